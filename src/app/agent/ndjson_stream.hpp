// The seed's NDJSON stream, POST /agent/stream/{agent_id}: a start line, a content line per delta,
// a done line (with a grounded agent's citations) or an error line.
#pragma once

#include "app/agent/service.hpp"

namespace agente::agent {

asio::awaitable<void> agent_stream(std::shared_ptr<Service> sp, Exchange& ex);

}  // namespace agente::agent
