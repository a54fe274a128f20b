#pragma once
// The `pidfile` directive: written at start, removed on every exit path (RAII).
// Not thread-safe. Failure to write is returned as a value by create().
#include <memory>
#include <string>
#include <variant>

namespace djinn::app {

class Pidfile {
  public:
    static std::variant<std::unique_ptr<Pidfile>, std::string> create(const std::string& path);
    ~Pidfile();
    Pidfile(const Pidfile&) = delete;
    Pidfile& operator=(const Pidfile&) = delete;
    const std::string& path() const { return path_; }

  private:
    explicit Pidfile(std::string path) : path_(std::move(path)) {}
    std::string path_;
};

}  // namespace djinn::app
