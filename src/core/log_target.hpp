// Where the access log's lines go, and how they are written without stalling a worker's loop.
//
// - A file (also a terminal or /dev/null): a plain write() of a whole buffer, as nginx does. A
//   regular file never makes its writer wait for a reader: the page cache takes the write. It can
//   still block on a stalled disk, which the heartbeat would show; avoiding that takes a thread (or
//   io_uring) per worker, and a thread per worker is what this replaced.
// - A pipe or a socket (stdout under systemd is the journal's socket, `| logger` a pipe): written
//   without ever blocking, and when it takes nothing its readiness is awaited on the loop. O_NONBLOCK
//   cannot be set on stdout itself: that open file description is shared with the master, the
//   other workers and usually stderr (the error log), whose writes would then fail whenever the
//   journal is slow. So a pipe is reopened through /proc/self/fd (a description of our own, made
//   non-blocking; where that is refused, a root-made pipe after a `user` switch, it is written as a
//   file is) and a socket is written with send(MSG_DONTWAIT), which asks the same per call.
//   The workers share the pipe: each write is whole lines of at most PIPE_BUF bytes, which the
//   kernel writes whole or not at all, so their lines never interleave.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace agente::core {

class LogTarget {
public:
    enum class Kind { none, file, stream };

    // "-" is stdout; anything else a path, created (mode 0666 less the umask) and appended to.
    // Throws std::runtime_error naming the path and the error.
    static LogTarget open(const std::string& name);

    LogTarget() = default;
    LogTarget(LogTarget&& other) noexcept;
    LogTarget& operator=(LogTarget&& other) noexcept;
    ~LogTarget();

    Kind kind() const { return kind_; }
    const std::string& name() const { return name_; }

    // As write(2): the bytes taken, or -1 with errno (EAGAIN: a stream that is full).
    ssize_t write(const char* data, std::size_t size) const;

    // A stream that took nothing: an epoll descriptor (kept by the target) that becomes readable
    // once the stream can take bytes again. arm() after each EAGAIN, disarm() after each wake-up.
    int watch_fd();
    void arm();
    void disarm();

    // Blocks until the stream can take bytes or `limit` passes: for the last lines at exit only.
    bool wait_writable(std::chrono::milliseconds limit) const;

private:
    void close();

    Kind kind_ = Kind::none;
    std::string name_;
    int fd_ = -1;
    bool owned_ = false;                 // stdout is not ours to close
    bool socket_ = false;                // written with send(), which takes MSG_DONTWAIT
    int watch_ = -1;                     // the epoll descriptor of watch_fd()
};

// The next write to a stream: the whole lines at the front of `pending` that fit in `atomic`
// bytes (PIPE_BUF), or, when the first line alone is longer, that line (written in pieces, it may
// interleave with another writer's: nothing shorter can be done with a line that long).
std::size_t next_piece(std::string_view pending, std::size_t atomic);

}  // namespace agente::core
