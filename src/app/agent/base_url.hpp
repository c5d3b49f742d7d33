// Where clients reach the agent, for its cards, when server.conf does not say ([agent] url).
#pragma once

#include <string>
#include <string_view>

namespace agente::agent {

// "http://" or "https://" + the request's Host, when Host is RFC 9110's `uri-host [":" port]` (an
// RFC 3986 authority without userinfo: a name, an IPv4 address or a bracketed IP literal, and a
// port of 1..65535); otherwise "" and the cards' URLs are relative ("/tasks/send"), resolved by a
// client against the card's own URL. A Host that is not a host must never reach a card: it would
// send clients (and their keys) wherever the request said.
std::string base_url_from_host(std::string_view scheme, std::string_view host);

}  // namespace agente::agent
