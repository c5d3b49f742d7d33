// The dirty pool's interface (gunicorn's dirty workers): blocking or stateful work the app runs in a
// separate, supervised set of processes, called from HTTP workers without blocking their loops.
//
// In a dirty worker the app registers job kinds (App::register_jobs); each job runs on one of the
// worker's `dirty_threads`, where blocking calls (files, SQLite, PDF parsing, CPU-heavy loops) are
// allowed and state loaded at boot lives for the process's life. In an HTTP worker the app calls
// them through DirtyClient (WorkerContext::dirty, null when `dirty_workers = 0`). docs/dirty.md
// tells the whole story: the frame format, deadlines, back-pressure, what happens when a worker dies.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace agente {

namespace asio = boost::asio;

// ---- in a dirty worker -------------------------------------------------------------------------

// One running job, as its handler sees it. Called from the job's own thread.
class JobContext {
public:
    virtual ~JobContext() = default;
    // The bytes the caller sent (valid for the whole call).
    virtual std::string_view payload() const = 0;
    // True once nobody wants the result: the caller cancelled (its client went away), its deadline
    // passed, or the worker is stopping past dirty_graceful_timeout. Check it between steps.
    virtual bool cancelled() const = 0;
    // Sends a piece of a streamed result at once. Blocks while the caller is far behind (a bounded
    // buffer); dropped once cancelled(). For a caller that asked for the whole result (call()), the
    // chunks are joined in front of what the handler returns.
    virtual void send_chunk(std::string_view chunk) = 0;
};

// The job's own failure, with a code the caller can act on ("not_found", "bad_input"...). Any other
// std::exception fails the job too, with code "error" and its what().
class JobError : public std::runtime_error {
public:
    JobError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
    const std::string& code() const { return code_; }
private:
    std::string code_;
};

// Returns the whole result (after any chunks sent).
using JobHandler = std::function<std::string(JobContext&)>;

struct JobOptions {
    // Safe to run twice: a call whose dirty worker died before answering is retried once, on another.
    bool idempotent = false;
};

class JobRegistry {
public:
    virtual ~JobRegistry() = default;
    // Kinds are the app's own names ("rag.search"); adding a kind twice replaces the first.
    virtual void add(std::string kind, JobHandler handler, JobOptions options = {}) = 0;
};

// ---- in an HTTP worker -------------------------------------------------------------------------

enum class DirtyErrc {
    none,
    timeout,        // the deadline (or dirty_timeout) passed first; the job was told to stop
    unavailable,    // no dirty worker, or the pool's queue is full: answer 503 with Retry-After
    job_failed,     // the job threw: code() and message() are its own
    worker_died,    // the dirty worker ended mid-call (crash, kill); not retried, or retried in vain
    cancelled,      // the caller's coroutine was cancelled (its client went away); the job was told
};

std::string_view to_string(DirtyErrc e);

struct DirtyResult {
    DirtyErrc error = DirtyErrc::none;
    std::string value;       // the job's result, when ok()
    std::string code;        // job_failed: JobError's code ("error" for another exception)
    std::string message;     // what went wrong, in words (for logs; never the caller's secrets)

    bool ok() const { return error == DirtyErrc::none; }
};

class DirtyClient {
public:
    virtual ~DirtyClient() = default;

    // Runs job `kind` on a dirty worker and waits for its whole result, at most `deadline`.
    // Never throws for the call's own failures (see DirtyResult). Honours the awaiting coroutine's
    // cancellation slot: a cancelled call tells the job (cancelled() turns true) and returns
    // DirtyErrc::cancelled at once.
    virtual asio::awaitable<DirtyResult> call(std::string_view kind, std::string payload,
                                              std::chrono::milliseconds deadline) = 0;

    // The same, with the job's chunks handed to `on_chunk` as they are made (each awaited before the
    // next is read: a slow consumer slows the job down instead of buffering without bound). Return
    // false from on_chunk to stop: the job is told, and the result is DirtyErrc::cancelled. The
    // result's value is what the handler returned after its chunks (often empty).
    using ChunkHandler = std::function<asio::awaitable<bool>(std::string_view chunk)>;
    virtual asio::awaitable<DirtyResult> stream(std::string_view kind, std::string payload,
                                                std::chrono::milliseconds deadline, ChunkHandler on_chunk) = 0;
};

}  // namespace agente
