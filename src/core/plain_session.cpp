// Sessions over plain sockets: TCP and Unix (session.hpp).
#include "core/session.hpp"

namespace agente::core {

void start_session(TcpSocket socket, const asio::ip::tcp::endpoint& peer, ServerContext& context) {
    socket.set_option(asio::ip::tcp::no_delay(true));
    spawn(std::move(socket), peer_address(peer), context);
}

void start_session(UnixSocket socket, ServerContext& context) {
    spawn(std::move(socket), "unix", context);
}

}  // namespace agente::core
