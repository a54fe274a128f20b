#include "app/cli.hpp"

int main(int argc, char** argv) {
    return djinn::app::run_cli(argc, argv);
}
