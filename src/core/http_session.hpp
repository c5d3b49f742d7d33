// One HTTP/1.1 connection: a coroutine that owns its socket and reads, dispatches and answers
// requests in order (keep-alive, pipelining, chunked bodies, 100-continue, HEAD) until either side
// ends the connection. The only file that knows Beast's HTTP types.
#pragma once

#include "core/server_context.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace agente::core {

void start_session(asio::ip::tcp::socket socket, ServerContext& context);
void start_session(asio::local::stream_protocol::socket socket, ServerContext& context);

}  // namespace agente::core
