// Reads that tell Asio when the socket is empty, so that the next read waits for epoll instead of
// trying first.
//
// Asio tries every socket read at once before it waits for readiness (a "speculative" read), and
// stops trying only after a read of 0 bytes. On a keep-alive connection the next request is never
// there yet when the response has just left, so each request cost a recv() that found nothing: a
// third of a /health request's system calls (2.9 per request against nginx's 2.1, counted with
// perf's syscall tracepoints under wrk), and in this VM a system call is most of a request's cost.
// nginx knows from its last read, when it took less than it had room for, that the socket is empty,
// and waits for the next event. So do these: a read of ShortReadBuffer that comes back short is
// reported to Asio's reactor as "done and exhausted", which makes it queue the next read on that
// socket without trying it, until epoll reports more data. A short TCP read means the kernel's
// receive queue was empty at that moment, and data arriving later raises a new edge-triggered event,
// so no wake-up is lost.
//
// This specialises a member of Asio's detail::reactive_socket_recv_op_base, so it is tied to the
// Asio it was written against (1.26, Boost 1.81): with any other, ShortReadBuffer is an ordinary
// buffer and reads behave as before.
#pragma once

#include <boost/asio/basic_stream_socket.hpp>  // and with it detail/reactive_socket_recv_op.hpp, in order
#include <boost/asio/buffer.hpp>
#include <boost/asio/version.hpp>

#include <utility>

namespace agente {

// One buffer to read into, marked for the treatment above.
struct ShortReadBuffer {
    boost::asio::mutable_buffer buffer;
    const boost::asio::mutable_buffer* begin() const { return &buffer; }
    const boost::asio::mutable_buffer* end() const { return &buffer + 1; }
};

// A stream socket as Beast's readers see it, every read going through a ShortReadBuffer (the first
// non-empty buffer of what the reader offers: a read_some may fill less than it is given).
template <class Socket>
class ShortReadStream {
public:
    using executor_type = typename Socket::executor_type;

    explicit ShortReadStream(Socket& socket) : socket_(socket) {}
    executor_type get_executor() noexcept { return socket_.get_executor(); }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        ShortReadBuffer one;
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it)
            if (boost::asio::mutable_buffer b(*it); b.size()) {
                one.buffer = b;
                break;
            }
        return socket_.async_read_some(one, std::forward<Token>(token));
    }

private:
    Socket& socket_;
};

}  // namespace agente

#if BOOST_ASIO_VERSION == 102600
namespace boost::asio::detail {

template <>
inline reactor_op::status reactive_socket_recv_op_base<agente::ShortReadBuffer>::do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const mutable_buffer& b = o->buffers_.buffer;
    bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    if (!socket_ops::non_blocking_recv1(o->socket_, b.data(), b.size(), o->flags_, stream, o->ec_, o->bytes_transferred_))
        return not_done;  // nothing there: Asio waits for epoll
    // Asio's own rule (0 bytes on a stream: exhausted), and ours: fewer bytes than there was room for.
    if (stream && (o->bytes_transferred_ == 0 || (!o->ec_ && o->bytes_transferred_ < b.size())))
        return done_and_exhausted;
    return done;
}

}  // namespace boost::asio::detail
#endif
