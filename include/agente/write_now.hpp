// A whole write to a non-blocking stream socket, at once when the socket takes it all, as it nearly
// always does (a response or an upstream request is smaller than the send buffer); the rest, if
// any, asynchronously. An async write that succeeds at once still posts its completion: a round of
// the event loop (one more epoll_wait) and an operation allocated, for every message. The socket
// must be in non-blocking mode (`socket.non_blocking(true)`), or the first part blocks.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <tuple>
#include <utility>

namespace agente {

// The buffers are taken by value: the caller's sequence may be a temporary, and the rest may be
// written after it is gone.
template <class Socket, class Buffers>
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_now(Socket& socket, Buffers buffers) {
    namespace asio = boost::asio;
    boost::system::error_code ec;
    std::size_t sent = asio::write(socket, buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        boost::beast::buffers_suffix<Buffers> rest(buffers);
        rest.consume(sent);
        // Named before the co_await: g++ 12 mishandles temporaries inside one (this one holds `rest`).
        auto rest_written = asio::async_write(socket, rest, asio::as_tuple(asio::deferred));
        auto [wec, wn] = co_await std::move(rest_written);
        ec = wec;
        sent += wn;
    }
    std::tuple<boost::system::error_code, std::size_t> result(ec, sent);
    co_return result;
}

}  // namespace agente
