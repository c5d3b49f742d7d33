// The error log: spdlog's default logger, in gunicorn's line shape
//   [2026-11-23 13:11:49 +0000] [76] [INFO] Booting worker with pid: 80
// with a syslog priority prefix ("<3>") when stderr is the journal, so `journalctl -p err` works.
#pragma once

#include <agente/config.hpp>

namespace agente::core {

// (Re)opens the error log named by config.errorlog at config.loglevel; used at start, on reload and
// on USR1 (logrotate moved the file). Throws std::runtime_error when the file cannot be opened.
void setup_error_log(const Config& config);

}  // namespace agente::core
