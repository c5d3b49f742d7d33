// The RAG engine in the dirty pool: one Engine (and one embedding loop) per dirty worker, serving
// the HTTP routes' jobs (wire.hpp) and ingesting in the background what is attached, including
// files an earlier process left half done.
#pragma once

#include "app/rag/rag_metrics.hpp"
#include "app/rag/store_board.hpp"

#include <agente/config.hpp>
#include <agente/dirty.hpp>

namespace agente::rag {

// What the dirty workers tell every process through the shared memory: the figures of /metrics and
// the stores of /status.
struct RagShared {
    Shared<RagCounters> counters;
    Shared<StoreBoard> board;
};
RagShared declare_rag_shared(SharedLayout& layout);

// `shared` is mapped before the jobs are registered.
void register_rag_jobs(JobRegistry& jobs, const Config& config, RagShared shared);

}  // namespace agente::rag
