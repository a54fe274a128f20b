#include "store/dispatch_sessions.hpp"

#include <chrono>
#include <string>

#include "common/fatal.hpp"

namespace djinn::store {

DispatchSessions::DispatchSessions(std::size_t count, Opener open)
    : count_(count), open_(std::move(open)) {
    DJINN_INVARIANT(count >= 2, "dispatch sessions asked for fewer than two sessions");
}

DispatchSessions::~DispatchSessions() {
    wait_opening();
}

void DispatchSessions::wait_opening() {
    if (opening_.valid())
        opening_.wait();
}

void DispatchSessions::collect() {
    if (!opening_.valid() ||
        opening_.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
        return;
    Opened r = opening_.get();
    if (discard_) {
        discard_ = false;
        return;
    }
    if (auto* e = std::get_if<PgError>(&r)) {
        error_ = *e;
        return;
    }
    sessions_ = std::move(std::get<std::vector<std::unique_ptr<PgConnection>>>(r));
}

std::vector<PgConnection*> DispatchSessions::ready() {
    collect();
    std::vector<PgConnection*> out;
    bool whole = sessions_.size() == count_;
    for (const auto& s : sessions_)
        whole = whole && !s->broken();
    if (whole) {
        for (const auto& s : sessions_)
            out.push_back(s.get());
        return out;
    }
    sessions_.clear();
    if (!opening_.valid()) {
        opening_ = std::async(std::launch::async, [open = open_, n = count_]() -> Opened {
            std::vector<std::unique_ptr<PgConnection>> set;
            for (std::size_t i = 0; i < n; ++i) {
                auto opened = open();
                if (auto* e = std::get_if<PgError>(&opened)) {
                    PgError err = *e;
                    err.message = "dispatch session " + std::to_string(i + 1) + ": " + err.message;
                    return err;
                }
                set.push_back(std::move(std::get<std::unique_ptr<PgConnection>>(opened)));
            }
            return set;
        });
    }
    return out;
}

void DispatchSessions::ping() {
    collect();
    for (const auto& s : sessions_) {
        if (!s->broken())
            (void)s->ping();  // a failure marks it broken
    }
}

std::optional<PgError> DispatchSessions::take_error() {
    collect();
    std::optional<PgError> e = std::move(error_);
    error_.reset();
    return e;
}

void DispatchSessions::close() {
    sessions_.clear();
    if (opening_.valid())
        discard_ = true;
    error_.reset();
}

}  // namespace djinn::store
