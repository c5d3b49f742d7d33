// Where the app keeps its databases: systemd's $STATE_DIRECTORY (StateDirectory= in the unit; its
// first entry when it lists several) when set, else the configured fallback.
#pragma once

#include <string>

namespace agente::app {

std::string state_directory(const std::string& fallback);

}  // namespace agente::app
