// The error log: spdlog's default logger, in gunicorn's line shape
//   [2026-11-23 13:11:49 +0000] [76] [INFO] Booting worker with pid: 80
// with a syslog priority prefix ("<3>") when stderr is the journal, so `journalctl -p err` works.
#pragma once

#include <agente/config.hpp>

#include <memory>

namespace spdlog { class logger; }

namespace agente::core {

// The error log setup_error_log() would install, opened but not installed yet: a reload opens the
// new one before it replaces anything. Throws std::runtime_error when the file cannot be opened.
std::shared_ptr<spdlog::logger> open_error_log(const Config& config);

// (Re)opens the error log named by config.errorlog at config.loglevel; used at start, on reload and
// on USR1 (logrotate moved the file). Throws std::runtime_error when the file cannot be opened.
void setup_error_log(const Config& config);

}  // namespace agente::core
