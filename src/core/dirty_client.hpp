// An HTTP worker's DirtyClient: each call is one connection to the dirty socket (dirty_socket.hpp),
// one REQUEST frame, and the frames that answer it, awaited on the worker's loop.
#pragma once

#include "core/core_metrics.hpp"
#include "core/scoreboard.hpp"

#include <agente/dirty.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace agente::core {

// `dirty_timeout` caps every call's deadline (0: no cap): a job running longer is killed anyway.
// Every call is counted in `meter` (the worker's cells for /metrics).
std::unique_ptr<DirtyClient> make_dirty_client(asio::any_io_executor executor, std::string address,
                                               Scoreboard& scoreboard, std::chrono::seconds dirty_timeout,
                                               DirtyCallMeter meter);

}  // namespace agente::core
