// What a session does differently over a plain socket and over TLS, chosen at compile time: the
// Session template (session.hpp) is instantiated once per stream type, so a plain connection
// takes no TLS branch on any request. Included by session.hpp only (it brings in asio::ssl).
#pragma once

#include "core/http_session.hpp"

#include <agente/short_reads.hpp>
#include <agente/write_now.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include <cstddef>
#include <string>
#include <tuple>

namespace agente::core {

using TlsStream = asio::ssl::stream<TcpSocket>;

template <class Stream>
struct StreamTraits;

// A plain socket is its own stream.
template <class Protocol>
struct StreamTraits<asio::basic_stream_socket<Protocol, IoExecutor>> {
    using Socket = asio::basic_stream_socket<Protocol, IoExecutor>;
    static constexpr bool tls = false;
    static Socket& socket(Socket& s) { return s; }
    // Requests are read through it: a short read tells Asio the socket is empty (short_reads.hpp).
    using Reader = ShortReadStream<Socket>;
};

// TLS over TCP: the socket under it is what deadlines cancel, the peer watch peeks at and the end
// of the connection closes.
template <>
struct StreamTraits<TlsStream> {
    static constexpr bool tls = true;
    static TcpSocket& socket(TlsStream& s) { return s.next_layer(); }
    // The SSL stream reads the socket into its own buffer, which a ShortReadBuffer cannot mark: the
    // requests are read from the stream itself.
    using Reader = TlsStream&;
};

// A whole write (a response, a chunk with its framing): at once when a plain socket takes it all
// (write_now.hpp). `joined` is TLS's scratch buffer, unused here.
template <class Protocol, class Buffers>
auto send(asio::basic_stream_socket<Protocol, IoExecutor>& socket, const Buffers& buffers, std::string&) {
    return write_now(socket, buffers);
}

// The most plaintext of one TLS record.
inline constexpr std::size_t tls_record_size = 16 * 1024;

// Asio's SSL stream encrypts one buffer of a sequence per write, each a record and a send of its own:
// a head and a small body would cost two records and two sends, a chunk with its framing four. Up
// to a record's worth is joined into `joined` (grown, never shrunk) first, so a response or an
// event leaves as one record in one send; a larger answer is written as it is.
template <class Buffers>
asio::awaitable<std::tuple<error_code, std::size_t>> send(TlsStream& stream, Buffers buffers, std::string& joined) {
    constexpr auto tuple_deferred = asio::as_tuple(asio::deferred);
    std::size_t size = asio::buffer_size(buffers);
    if (size > tls_record_size) co_return co_await asio::async_write(stream, buffers, tuple_deferred);
    if (joined.size() < size) joined.resize(tls_record_size);
    asio::buffer_copy(asio::buffer(joined), buffers);
    auto one = asio::buffer(joined.data(), size);  // named before the co_await (g++ 12)
    co_return co_await asio::async_write(stream, one, tuple_deferred);
}

}  // namespace agente::core
