// OpenAI's Files and Vector Stores endpoints (/v1/files, /v1/vector_stores/...): each request is
// checked (client key, sizes, multipart, JSON) and relayed to a dirty worker's RAG job (jobs.hpp);
// the HTTP worker never touches the disk or the index.
#pragma once

#include "app/gateway/gateway.hpp"

#include <agente/app.hpp>
#include <agente/dirty.hpp>

#include <memory>

namespace agente::rag {

void add_rag_routes(Router& router, WorkerContext& context, std::shared_ptr<gateway::Gateway> gw);

// A RAG job's answer, or the pool's failure, as an HTTP response in OpenAI's shapes.
Response response_of(const DirtyResult& result);

}  // namespace agente::rag
