#include "core/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cctype>
#include <ctime>
#include <cstdlib>
#include <string>

namespace agente::core {

namespace {

// gunicorn writes level names in capitals: INFO, WARNING, ERROR, CRITICAL, DEBUG.
class UpperLevel final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr std::string_view names[] = {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OFF"};
        auto n = names[msg.level];
        dest.append(n.data(), n.data() + n.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<UpperLevel>(); }
};

// sd-daemon(3) priority prefixes, read by journald from a stream connected to it.
class SyslogPriority final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr std::string_view prefixes[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
        auto p = prefixes[msg.level];
        dest.append(p.data(), p.data() + p.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPriority>(); }
};

// gunicorn's time zone is "+0000" (strftime's %z); spdlog's %z writes "+00:00".
class NumericZone final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg&, const std::tm& tm, spdlog::memory_buf_t& dest) override {
        char buf[8];
        std::size_t n = std::strftime(buf, sizeof buf, "%z", &tm);
        dest.append(buf, buf + n);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<NumericZone>(); }
};

// JOURNAL_STREAM holds "device:inode" of the journal's stream; stderr is the journal when they match.
bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js) return false;
    struct stat st{};
    if (::fstat(2, &st) != 0) return false;
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) == js;
}

spdlog::level::level_enum parse_level(const std::string& name) {
    if (name == "debug") return spdlog::level::debug;
    if (name == "warning") return spdlog::level::warn;
    if (name == "error") return spdlog::level::err;
    if (name == "critical") return spdlog::level::critical;
    return spdlog::level::info;
}

}  // namespace

std::shared_ptr<spdlog::logger> open_error_log(const Config& config) {
    bool to_stderr = config.errorlog.empty() || config.errorlog == "-";
    spdlog::sink_ptr sink;
    if (to_stderr)
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    else
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.errorlog);
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<UpperLevel>('*').add_flag<SyslogPriority>('&').add_flag<NumericZone>('Z');
    bool journal = to_stderr && stderr_is_journal();
    // The journal stamps time itself; gunicorn's bracketed time is kept for files and terminals.
    formatter->set_pattern(journal ? "%&[%P] [%*] %v" : "[%Y-%m-%d %H:%M:%S %Z] [%P] [%*] %v");
    sink->set_formatter(std::move(formatter));
    auto logger = std::make_shared<spdlog::logger>("agente-hibrido", sink);
    logger->set_level(parse_level(config.loglevel));
    logger->flush_on(spdlog::level::trace);  // error-log lines are rare; an operator must see them at once
    return logger;
}

void setup_error_log(const Config& config) { spdlog::set_default_logger(open_error_log(config)); }

}  // namespace agente::core
