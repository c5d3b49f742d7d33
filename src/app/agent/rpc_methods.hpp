// The JSON-RPC methods of /tasks/send: the seed's "execute", and A2A's SendMessage,
// SendStreamingMessage, GetTask and CancelTask (v1.0 and v0.3 names); routes.cpp dispatches to them.
// Each answers its own errors as JSON-RPC errors. The ones that call the LLM charge the tokens it
// reported to the client key's `pass` (gateway/admission.hpp), which the dispatch took.
#pragma once

#include "app/agent/service.hpp"
#include "app/gateway/admission.hpp"

namespace agente::agent {

asio::awaitable<void> execute(Service& s, Exchange& ex, const RpcCall& call, gateway::Pass& pass);
asio::awaitable<void> send_message(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, Dialect d,
                                   gateway::Pass& pass);
// Its places in the stream limits are the pass's, taken as a stream.
asio::awaitable<void> send_streaming_message(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, Dialect d,
                                             gateway::Pass& pass);
asio::awaitable<void> get_task(Service& s, Exchange& ex, const RpcCall& call, Dialect d);
asio::awaitable<void> cancel_task(Service& s, Exchange& ex, const RpcCall& call, Dialect d);

}  // namespace agente::agent
