// A dirty worker's jobs: the kinds the app registered, the threads that run them (dirty_threads),
// and one call's state, shared by the worker's loop (which reads and writes its connection) and
// the job's thread (which runs the handler and hands chunks to the loop).
#pragma once

#include "core/dirty_protocol.hpp"

#include <agente/dirty.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace agente::core {

// The app's job kinds, filled once by App::register_jobs at boot, read-only afterwards.
class JobTable final : public JobRegistry {
public:
    struct Entry {
        JobHandler handler;
        JobOptions options;
    };
    void add(std::string kind, JobHandler handler, JobOptions options) override;
    const Entry* find(std::string_view kind) const;
    std::vector<std::uint64_t> idempotent_hashes() const;   // kind_hash() of the idempotent kinds
    std::size_t size() const { return kinds_.size(); }

private:
    std::map<std::string, Entry, std::less<>> kinds_;
};

// A streamed job waits in send_chunk while this many bytes of its chunks are not yet written to
// the caller: a slow caller slows the job down instead of filling the worker's memory.
inline constexpr std::size_t chunk_buffer_limit = 1 << 20;

// One call, from the connection taken off the dirty socket to its last frame written.
struct Call {
    using Socket = asio::basic_stream_socket<asio::local::stream_protocol, asio::any_io_executor>;
    enum class State { reading, running, writing };

    explicit Call(Socket s) : socket(std::move(s)) {}

    Socket socket;
    State state = State::reading;
    std::int64_t taken_ns = 0;        // taken off the socket (reading) / handed to a thread (running)
    dirty::FrameReader reader;
    std::uint64_t id = 0;
    std::string body;                 // the REQUEST frame's body: `request` views into it
    dirty::Request request;
    const JobTable::Entry* job = nullptr;

    // The job's thread reads what the loop sets: CANCEL received, caller gone, worker stopping.
    std::atomic<bool> cancel{false};
    bool cancelled() const;           // cancel, or the request's deadline has passed
    bool past_deadline() const;
    void set_cancelled();             // and wakes a send_chunk waiting for room

    // Chunk bytes handed to the loop and not yet written (under `mutex`).
    std::mutex mutex;
    std::condition_variable room;
    std::size_t unsent = 0;
    void release(std::size_t chunk_bytes);

    // Loop only: frames waiting to be written, one write at a time, with the chunk bytes each frees.
    struct Out {
        std::string frame;
        std::size_t chunk_bytes = 0;
    };
    std::deque<Out> out;
    bool writing = false;
    bool finished = false;            // the last frame is queued: close once it is written
};

// The job's view of its call (JobContext), on the job's thread. A whole call's chunks are joined
// here; a streamed call's go to the loop through `post_chunk` as frames.
class CallContext final : public JobContext {
public:
    using PostChunk = std::function<void(std::string frame, std::size_t chunk_bytes)>;
    CallContext(Call& call, PostChunk post_chunk) : call_(call), post_chunk_(std::move(post_chunk)) {}

    std::string_view payload() const override { return call_.request.payload; }
    bool cancelled() const override { return call_.cancelled(); }
    void send_chunk(std::string_view chunk) override;
    std::string take_joined() { return std::move(joined_); }

private:
    Call& call_;
    PostChunk post_chunk_;
    std::string joined_;
};

// What a job left: its value, or its error (code non-empty).
struct Outcome {
    std::string value;
    std::string code;
    std::string message;
};

// Runs `handler` for `call` and catches what it throws.
Outcome run_job(Call& call, CallContext& context);

// dirty_threads threads, each running one job at a time. The loop hands a job over only when it
// knows a thread is free (it accepts a call only then), so the queue never holds more than that.
class JobThreads {
public:
    explicit JobThreads(int threads);
    ~JobThreads();                    // stop_and_join()
    void submit(std::function<void()> job);
    // Asks the threads to end after their current job and joins them: only when none is busy
    // (a job stuck in a blocking call would never let join return).
    void stop_and_join();

private:
    void run();
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace agente::core
