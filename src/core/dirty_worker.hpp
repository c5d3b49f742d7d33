// A dirty worker (gunicorn's dirty workers, docs/dirty.md): one process that loads the app's job
// kinds once (App::register_jobs, where blocking is allowed and state lives for the process's
// life), then takes calls from the dirty socket and runs each on one of its dirty_threads. Its own
// loop reads and writes the calls' connections, hears cancellations and stamps the heartbeat, so a
// job that blocks never stops the worker from answering the master — but a job running past
// dirty_timeout holds the heartbeat back, and the master kills the worker as hung.
#pragma once

#include "core/worker.hpp"

#include <agente/config.hpp>

namespace agente::core {

// Runs until the worker is told to stop; returns the process exit code.
int run_dirty_worker(const Config& config, const WorkerSetup& setup);

}  // namespace agente::core
