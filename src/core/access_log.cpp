#include "core/access_log.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace agente::core {

namespace {

// gunicorn's %(t)s: [23/Nov/2026:13:11:49 +0000]
std::string clf_time() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "[%d/%b/%Y:%H:%M:%S %z]", &tm);
    return buf;
}

std::string_view or_dash(std::string_view v) { return v.empty() ? std::string_view("-") : v; }

// %(name)s atoms and %({header}i)s forms, everything else literal.
std::vector<std::pair<char, std::string>> parse_format(const std::string& fmt) {
    std::vector<std::pair<char, std::string>> out;
    std::string literal;
    for (std::size_t i = 0; i < fmt.size(); ++i) {
        if (fmt.compare(i, 2, "%(") == 0) {
            auto close = fmt.find(")s", i);
            if (close != std::string::npos) {
                std::string name = fmt.substr(i + 2, close - i - 2);
                if (!literal.empty()) out.emplace_back('\0', std::exchange(literal, {}));
                if (name.size() > 3 && name.front() == '{' && name[name.size() - 2] == '}')
                    out.emplace_back(name.back(), name.substr(1, name.size() - 3));
                else if (name.size() == 1)
                    out.emplace_back(name[0], "");
                else
                    out.emplace_back('\0', "-");  // unknown atom: gunicorn prints "-"
                i = close + 1;
                continue;
            }
        }
        literal += fmt[i];
    }
    if (!literal.empty()) out.emplace_back('\0', literal);
    return out;
}

}  // namespace

AccessLog::AccessLog(const Config& config)
    : target_(config.accesslog), pid_("<" + std::to_string(::getpid()) + ">") {
    for (auto& [kind, text] : parse_format(config.access_log_format)) atoms_.push_back({kind, std::move(text)});
    open();
}

AccessLog::~AccessLog() {
    if (logger_) logger_->flush();
}

void AccessLog::open() {
    if (target_.empty()) return;
    if (!spdlog::thread_pool()) spdlog::init_thread_pool(8192, 1);
    spdlog::sink_ptr sink;
    if (target_ == "-")
        sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    else
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(target_);
    sink->set_pattern("%v");
    // Block rather than drop when the queue is full: an access log with holes is worse than a pause.
    logger_ = std::make_shared<spdlog::async_logger>("access", sink, spdlog::thread_pool(),
                                                     spdlog::async_overflow_policy::block);
    logger_->flush_on(spdlog::level::info);
}

void AccessLog::reopen() {
    if (logger_) logger_->flush();
    logger_.reset();
    open();
}

void AccessLog::write(const AccessRecord& r) {
    if (logger_) logger_->info(format(r));
}

std::string AccessLog::format(const AccessRecord& r) const {
    const Request& q = *r.request;
    std::string out;
    out.reserve(160);
    auto us = r.duration.count();
    for (const auto& a : atoms_) {
        switch (a.kind) {
            case '\0': out += a.text; break;
            case 'h': out += q.remote_addr(); break;
            case 'l': case 'u': out += '-'; break;
            case 't': out += clf_time(); break;
            case 'r': out.append(q.method()).append(" ").append(q.target()).append(" ").append(r.version); break;
            case 'm': out += q.method(); break;
            case 'U': out += q.path(); break;
            case 'q': out += q.query(); break;
            case 'H': out += r.version; break;
            case 's': out += std::to_string(r.status); break;
            case 'B': out += std::to_string(r.bytes); break;
            case 'b': out += r.bytes ? std::to_string(r.bytes) : "-"; break;
            case 'f': out += or_dash(q.header("Referer")); break;
            case 'a': out += or_dash(q.header("User-Agent")); break;
            case 'T': out += std::to_string(us / 1'000'000); break;
            case 'M': out += std::to_string(us / 1000); break;
            case 'D': out += std::to_string(us); break;
            case 'L': { char b[32]; std::snprintf(b, sizeof b, "%.6f", us / 1e6); out += b; break; }
            default: out += '-'; break;
            case 'p': out += pid_; break;
            case 'i': out += or_dash(q.header(a.text)); break;
            case 'o': out += or_dash(r.response_header ? r.response_header(r.response_context, a.text) : ""); break;
            case 'e': { const char* v = std::getenv(a.text.c_str()); out += v ? v : "-"; break; }
        }
    }
    return out;
}

}  // namespace agente::core
