// One HTTP/1.1 connection, plain or TLS: a coroutine that owns its socket and reads, dispatches and
// answers requests in order (keep-alive, pipelining, chunked bodies, 100-continue, HEAD) until either
// side ends the connection. The only file that knows Beast's HTTP types.
#pragma once

#include "core/server_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace boost::asio::ssl { class context; }

namespace agente::core {

// Sockets and acceptors bound to the io_context's own executor type: every I/O operation copies
// its socket's executor, and the type-erased any_io_executor made each copy a call.
using IoExecutor = asio::io_context::executor_type;
using TcpSocket = asio::basic_stream_socket<asio::ip::tcp, IoExecutor>;
using UnixSocket = asio::basic_stream_socket<asio::local::stream_protocol, IoExecutor>;
using TcpAcceptor = asio::basic_socket_acceptor<asio::ip::tcp, IoExecutor>;
using UnixAcceptor = asio::basic_socket_acceptor<asio::local::stream_protocol, IoExecutor>;

// `peer`: the address accept() returned with the socket.
void start_session(TcpSocket socket, const asio::ip::tcp::endpoint& peer, ServerContext& context);
void start_session(UnixSocket socket, ServerContext& context);
// A connection to a socket that serves TLS: the handshake, then the same HTTP/1.1 session.
void start_session(TcpSocket socket, const asio::ip::tcp::endpoint& peer, ServerContext& context,
                   asio::ssl::context& tls);

}  // namespace agente::core
