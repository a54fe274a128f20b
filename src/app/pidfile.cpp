#include "app/pidfile.hpp"

#include "app/fatal_handler.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace djinn::app {

std::variant<std::unique_ptr<Pidfile>, std::string> Pidfile::create(const std::string& path) {
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty())
        std::filesystem::create_directories(dir, ec);
    std::ofstream out(path, std::ios::trunc);
    if (!out)
        return "cannot write pidfile " + path + ": " + std::strerror(errno);
    out << ::getpid() << "\n";
    out.close();
    if (!out)
        return "cannot write pidfile " + path + ": " + std::strerror(errno);
    fatal_handler::set_pidfile(path);  // a crash removes it too
    return std::unique_ptr<Pidfile>(new Pidfile(path));
}

Pidfile::~Pidfile() {
    fatal_handler::set_pidfile("");
    std::error_code ec;
    std::filesystem::remove(path_, ec);
}

}  // namespace djinn::app
