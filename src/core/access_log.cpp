#include "core/access_log.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace agente::core {

namespace {

using Clock = std::chrono::steady_clock;

// Room for one line when access_log_buffer is 0 (every line written at once); a longer one grows it.
constexpr std::size_t unbuffered_room = 4096;
// Lost lines are reported at once when lines flow again, and at most this often while they do not
// (a full disk fails every write).
constexpr std::chrono::seconds loss_report_interval{10};

}  // namespace

AccessLog::AccessLog(const Config& config, asio::io_context::executor_type executor)
    : format_(config.access_log_format),
      name_(config.accesslog),
      flush_at_(config.access_log_buffer),
      flush_interval_(config.access_log_flush),
      timer_(executor) {
    if (name_.empty()) return;
    target_ = LogTarget::open(name_);
    buffer_.resize(std::max(flush_at_, unbuffered_room));
}

AccessLog::~AccessLog() { close(); }

void AccessLog::write(const AccessRecord& record) {
    if (!enabled()) return;
    std::size_t need = format_.prepare(record);
    if (end_ + need > buffer_.size() && !make_room(need)) {
        ++lost_;
        ++lost_total_;
        // Built once: this is the loop at its busiest, and copying into last_error_'s own capacity
        // allocates nothing per dropped line.
        static const std::string stalled =
            "the stream took nothing while " + std::to_string(backlog_limit) + " bytes waited";
        last_error_ = stalled;
        return;
    }
    bool was_empty = begin_ == end_;
    end_ = std::size_t(format_.write(buffer_.data() + end_, record) - buffer_.data());
    if (end_ - begin_ >= flush_at_)
        flush();
    else if (was_empty && !timer_armed_)
        arm_timer();
}

// The line does not fit: write what is buffered (nginx's buffer= does the same), and when the
// target is a stalled stream, keep its lines and grow, up to backlog_limit.
bool AccessLog::make_room(std::size_t need) {
    flush();
    compact();
    if (end_ + need <= buffer_.size()) return true;
    if (end_ > 0 && end_ + need > backlog_limit) return false;
    buffer_.resize(std::max(end_ + need, std::min(2 * buffer_.size(), backlog_limit)));
    return true;
}

void AccessLog::compact() {
    if (begin_ == 0) return;
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
}

// Whatever the target takes now: a file all of it, in one write (two when interrupted); a stream
// as much as it has room for, in pieces of whole lines, and the rest once it is writable again.
void AccessLog::flush() {
    if (waiting_ || !enabled()) return;
    bool stream = target_.kind() == LogTarget::Kind::stream;
    while (begin_ < end_) {
        std::string_view pending(buffer_.data() + begin_, end_ - begin_);
        std::size_t size = stream ? next_piece(pending, PIPE_BUF) : pending.size();
        ssize_t n = target_.write(pending.data(), size);
        if (n > 0) {
            begin_ += std::size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (closing_) return;  // close() waits for it
            if (await_writable()) return;
        }
        lose_pending(n < 0 ? std::strerror(errno) : "the write took nothing");
    }
    begin_ = end_ = 0;
    std::size_t room = std::max(flush_at_, unbuffered_room);
    if (buffer_.size() > room) {  // a stall or a long line grew it: give the memory back
        buffer_.resize(room);
        buffer_.shrink_to_fit();
    }
    report_losses(false);
}

void AccessLog::arm_timer() {
    timer_armed_ = true;
    timer_.expires_after(flush_interval_);
    timer_.async_wait([this](error_code ec) {
        if (ec) return;
        timer_armed_ = false;
        flush();
    });
}

// The stream's watch descriptor, on the loop: readable once the stream takes bytes again. Asio gets
// a duplicate of it (it closes what it is given; the target keeps its own).
bool AccessLog::await_writable() {
    if (!watch_) {
        int fd = target_.watch_fd();
        int copy = fd < 0 ? -1 : ::dup(fd);
        if (copy < 0) return false;
        watch_.emplace(timer_.get_executor(), copy);
    }
    target_.arm();
    waiting_ = true;
    watch_->async_wait(asio::posix::descriptor_base::wait_read, [this](error_code ec) {
        if (ec) return;  // cancelled: whoever cancelled it reset waiting_
        waiting_ = false;
        target_.disarm();
        flush();
    });
    return true;
}

void AccessLog::stop_waiting() {
    watch_.reset();  // cancels the wait, closes the duplicate
    waiting_ = false;
}

void AccessLog::lose_pending(std::string why) {
    std::string_view pending(buffer_.data() + begin_, end_ - begin_);
    auto lines = std::uint64_t(std::count(pending.begin(), pending.end(), '\n'));
    lost_ += lines;
    lost_total_ += lines;
    last_error_ = std::move(why);
    begin_ = end_ = 0;
}

void AccessLog::report_losses(bool now) {
    if (!lost_) return;
    auto t = Clock::now();
    if (!now && t - last_report_ < loss_report_interval) return;
    last_report_ = t;
    spdlog::error("Access log {}: {} lines lost ({})", target_.name(), lost_, last_error_);
    lost_ = 0;
}

void AccessLog::reopen() {
    if (!enabled()) return;
    flush();
    if (name_ == "-") return;  // stdout stays what it is
    try {
        LogTarget fresh = LogTarget::open(name_);
        stop_waiting();
        target_ = std::move(fresh);
        flush();  // what a stalled FIFO kept
    } catch (const std::exception& e) {
        spdlog::error("{}; the access log goes on to the file it had", e.what());
    }
}

void AccessLog::close() {
    if (!enabled()) return;
    closing_ = true;
    timer_.cancel();
    timer_armed_ = false;
    stop_waiting();
    auto deadline = Clock::now() + exit_flush_limit;
    for (;;) {
        flush();
        if (begin_ == end_) break;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0 || !target_.wait_writable(left)) {
            lose_pending("the stream took nothing for " + std::to_string(exit_flush_limit.count()) + " ms at exit");
            break;
        }
    }
    report_losses(true);
    target_ = LogTarget();
}

}  // namespace agente::core
