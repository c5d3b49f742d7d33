#include "app/rag/jobs.hpp"

#include "app/rag/api.hpp"
#include "app/rag/gateway_embedder.hpp"
#include "app/rag/wire.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace agente::rag {

namespace {

// What one dirty worker holds for its life. The engine goes first (its ingest thread may be waiting
// on an embedding), then the loop that embeds.
struct Service {
    std::unique_ptr<EmbeddingLoop> loop;
    std::unique_ptr<Engine> engine;

    ~Service() {
        engine.reset();
        loop.reset();
    }
};

// A search job, timed for /metrics (the API's searches and grounded answers' alike).
JobHandler timed_search(JobHandler handler, Shared<RagCounters> counters) {
    return [handler = std::move(handler), counters](JobContext& job) {
        auto start = std::chrono::steady_clock::now();
        auto took = [&] {
            return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
        };
        try {
            std::string answer = handler(job);
            count_search(*counters, took(), !is_refusal(answer));
            return answer;
        } catch (...) {
            count_search(*counters, took(), false);
            throw;
        }
    };
}

// A job that may change what the stores hold: the board is published again after it.
JobHandler publishing(JobHandler handler, std::shared_ptr<Service> service, Shared<StoreBoard> board) {
    return [handler = std::move(handler), service, board](JobContext& job) {
        std::string answer = handler(job);
        if (!is_refusal(answer)) publish_stores(*board, *service->engine);
        return answer;
    };
}

}  // namespace

RagShared declare_rag_shared(SharedLayout& layout) { return {declare_rag_counters(layout), declare_store_board(layout)}; }

void register_rag_jobs(JobRegistry& jobs, const Config& config, RagShared shared) {
    Shared<RagCounters> counters = shared.counters;
    Shared<StoreBoard> board = shared.board;
    if (!rag_configured(*config.app)) return;
    RagSettings settings = load_rag_settings(*config.app, config.app_source);
    auto service = std::make_shared<Service>();
    std::shared_ptr<Embedder> embedder;
    if (!settings.embedding_model.empty()) {
        service->loop = std::make_unique<EmbeddingLoop>(config);
        embedder = service->loop->embedder(settings.embedding_model, settings.embedding_batch_size);
    }
    service->engine = std::make_unique<Engine>(settings, embedder, cluster::worker_cluster_settings(config));
    Engine* engine = service->engine.get();   // the observer runs on the engine's own thread, within its life
    service->engine->on_ingested([counters, board, engine](const IngestOutcome& o) {
        count_ingest(*counters, o);
        publish_stores(*board, *engine);
    });
    publish_stores(*board, *engine);
    service->engine->start_background_ingest();   // resumes what a dead process left in progress
    spdlog::info("rag: store {} ({})", service->engine->database_path(),
                 settings.embedding_model.empty() ? std::string("keyword search only")
                                                  : "embeddings by " + settings.embedding_model);

    auto handler = [service](JobContext& job) { return run_api(*service->engine, job.payload()); };
    JobOptions idempotent;   // reads and search change nothing: a call whose worker died is retried
    idempotent.idempotent = true;
    jobs.add(wire::read_kind, handler, idempotent);
    jobs.add(wire::search_kind, timed_search(handler, counters), idempotent);
    jobs.add(wire::files_kind, publishing(handler, service, board));
    jobs.add(wire::stores_kind, publishing(handler, service, board));
    jobs.add(wire::store_files_kind, publishing(handler, service, board));
    jobs.add(wire::batches_kind, publishing(handler, service, board));
}

}  // namespace agente::rag
