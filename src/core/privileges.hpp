// Switching to `user` and `group` after the master bound the sockets (root only), as gunicorn's
// workers do. Called first thing in every worker of either pool.
#pragma once

#include <agente/config.hpp>

namespace agente::core {

// Throws std::runtime_error naming the user or group that cannot be switched to.
void drop_privileges(const Config& config);

}  // namespace agente::core
