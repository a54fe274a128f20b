#include "store/dispatch_sessions.hpp"

#include "common/fatal.hpp"

namespace djinn::store {

DispatchSessions::DispatchSessions(std::size_t count, Opener open)
    : open_(std::move(open)), sessions_(count) {
    DJINN_INVARIANT(count >= 2, "dispatch sessions asked for fewer than two sessions");
}

std::variant<std::vector<PgConnection*>, PgError> DispatchSessions::ready() {
    std::vector<PgConnection*> out;
    out.reserve(sessions_.size());
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
        auto& s = sessions_[i];
        if (!s || s->broken()) {
            s.reset();
            auto opened = open_();
            if (auto* e = std::get_if<PgError>(&opened)) {
                PgError err = *e;
                err.message = "dispatch session " + std::to_string(i + 1) + ": " + err.message;
                return err;
            }
            s = std::move(std::get<std::unique_ptr<PgConnection>>(opened));
        }
        out.push_back(s.get());
    }
    return out;
}

void DispatchSessions::close() {
    for (auto& s : sessions_)
        s.reset();
}

}  // namespace djinn::store
