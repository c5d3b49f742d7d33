// The access log, in gunicorn's access_log_format atoms (%(h)s %(t)s "%(r)s" %(s)s %(b)s ...),
// written by spdlog's async logger so that a slow disk or a full pipe never stalls a worker's loop.
#pragma once

#include <agente/config.hpp>
#include <agente/handler.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog { class logger; }

namespace agente::core {

struct AccessRecord {
    const Request* request = nullptr;
    std::string_view version;                  // "HTTP/1.1"
    int status = 0;
    std::uint64_t bytes = 0;                   // response body bytes
    std::chrono::microseconds duration{0};
    // Response header lookup, for %({name}o)s.
    std::string_view (*response_header)(const void* context, std::string_view name) = nullptr;
    const void* response_context = nullptr;
};

class AccessLog {
public:
    explicit AccessLog(const Config& config);
    ~AccessLog();
    bool enabled() const { return logger_ != nullptr; }
    void write(const AccessRecord& record);
    void reopen();  // USR1: logrotate moved the file

    // Exposed for tests: the formatted line, without writing it.
    std::string format(const AccessRecord& record) const;

private:
    struct Atom {
        char kind;              // '\0' literal, or gunicorn's atom letter; 'i'/'o'/'e' carry a name
        std::string text;       // literal text or {name}
    };
    void open();
    std::vector<Atom> atoms_;
    std::string target_;
    std::string pid_;                       // "<1234>" for %(p)s, gunicorn's shape
    std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace agente::core
