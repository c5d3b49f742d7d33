// The RAG engine's figures for GET /metrics: files ingested by outcome, chunks indexed, chunks
// embedded (and those whose vectors the cache had), searches and their duration. The dirty workers
// count them into one whole-server region with fetch_add: their jobs run on several threads of a
// process, which a per-worker cell written by a load and a store (agente::bump) would lose counts
// between; and RAG events are milliseconds to minutes apart, so the shared cache line costs nothing.
#pragma once

#include "app/rag/engine.hpp"

#include <agente/metrics.hpp>
#include <agente/shared.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace agente::rag {

inline constexpr int ingest_outcomes = 3;   // completed, failed, cancelled (a file handed back is not done)

struct RagCounters {
    std::atomic<std::uint64_t> ingests[ingest_outcomes];
    std::atomic<std::uint64_t> chunks;       // indexed by completed ingests
    std::atomic<std::uint64_t> embedded;     // chunks embedded by the embedding model
    std::atomic<std::uint64_t> reused;       // chunks whose vectors the cache had
    std::atomic<std::uint64_t> searches[2];  // ok, failed
    std::atomic<std::uint64_t> search_buckets[latency_buckets];
    std::atomic<std::uint64_t> search_sum_us;
};

Shared<RagCounters> declare_rag_counters(SharedLayout& layout);

// A file's ingest ended (any thread).
void count_ingest(RagCounters& counters, const IngestOutcome& outcome);
// A search job ended after `took` (any thread).
void count_search(RagCounters& counters, std::chrono::microseconds took, bool ok);

void write_rag_metrics(MetricsText& out, const RagCounters& counters);

}  // namespace agente::rag
