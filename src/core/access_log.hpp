// The access log, written from the worker's own loop as nginx's `access_log ... buffer= flush=`:
// each line is formatted straight into a per-worker buffer (access_format.hpp), and the buffer goes
// to the file or stream (log_target.hpp) when the next line does not fit, when the flush timer
// fires (armed when a line enters an empty buffer), before a reopen (USR1) and at exit. No thread,
// no queue, no lock: a line costs its formatting, a write costs one system call per buffer.
//
// A stream that takes nothing (a full pipe, a slow journal) is waited for on the loop; the lines
// meanwhile stay in the buffer, which grows up to `backlog_limit`. Past that, new lines are dropped
// and counted, and the count is logged (error log) once lines flow again, and at exit.
#pragma once

#include "core/access_format.hpp"
#include "core/log_target.hpp"

#include <agente/config.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente::core {

class AccessLog {
public:
    // The most a stalled stream's lines may hold in memory before new lines are dropped.
    static constexpr std::size_t backlog_limit = 4 * 1024 * 1024;
    // The longest the last flush at exit waits for a stalled stream, before its lines count as lost.
    static constexpr std::chrono::milliseconds exit_flush_limit{1000};

    // Opens config.accesslog (none when empty); throws std::runtime_error when it cannot.
    AccessLog(const Config& config, asio::io_context::executor_type executor);
    ~AccessLog();

    bool enabled() const { return target_.kind() != LogTarget::Kind::none; }
    bool timed() const { return format_.timed(); }  // whether a record needs its duration

    void write(const AccessRecord& record);
    void reopen();   // USR1 (logrotate moved the file): what is buffered goes to the old file first
    void close();    // at exit: everything buffered, waiting at most exit_flush_limit for a stream

    // What the log counts, for tests.
    std::uint64_t lost() const { return lost_total_; }

private:
    void flush();
    bool make_room(std::size_t need);
    void compact();
    void arm_timer();
    bool await_writable();
    void stop_waiting();
    void lose_pending(std::string why);
    void report_losses(bool now);

    AccessFormat format_;
    std::string name_;                     // config.accesslog, reopened on USR1
    LogTarget target_;
    std::size_t flush_at_;                 // access_log_buffer: unwritten bytes that make a write
    std::chrono::seconds flush_interval_;  // access_log_flush
    std::vector<char> buffer_;             // [begin_, end_) not written yet; only whole lines
    std::size_t begin_ = 0, end_ = 0;
    asio::steady_timer timer_;
    bool timer_armed_ = false;
    std::optional<asio::posix::stream_descriptor> watch_;  // a duplicate of the target's watch_fd()
    bool waiting_ = false;                 // for a stream to take bytes again
    bool closing_ = false;
    std::uint64_t lost_ = 0;               // lines dropped or failed since the last report
    std::uint64_t lost_total_ = 0;
    std::string last_error_;
    std::chrono::steady_clock::time_point last_report_{};
};

}  // namespace agente::core
