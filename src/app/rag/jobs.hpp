// The RAG engine in the dirty pool: one Engine (and one embedding loop) per dirty worker, serving
// the HTTP routes' jobs (wire.hpp) and ingesting in the background what is attached, including
// files an earlier process left half done.
#pragma once

#include <agente/config.hpp>
#include <agente/dirty.hpp>

namespace agente::rag {

void register_rag_jobs(JobRegistry& jobs, const Config& config);

}  // namespace agente::rag
