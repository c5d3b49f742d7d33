// Sessions over TLS (session.hpp), in a unit of their own so that the plain ones compile as if
// TLS did not exist.
#include "core/session.hpp"

namespace agente::core {

void start_session(TcpSocket socket, const asio::ip::tcp::endpoint& peer, ServerContext& context,
                   asio::ssl::context& tls) {
    socket.set_option(asio::ip::tcp::no_delay(true));
    spawn(TlsStream(std::move(socket), tls), peer_address(peer), context);
}

}  // namespace agente::core
