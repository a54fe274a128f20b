#pragma once
// The command line entry: flags, config, logger, signals, then run the app. main() calls this.
namespace djinn::app {

int run_cli(int argc, char** argv);

}  // namespace djinn::app
