// The engine's connections and its background ingest thread.
#include "app/rag/engine.hpp"

#include "app/common/postgres.hpp"
#include "app/rag/owner.hpp"
#include "app/rag/pg_store.hpp"
#include "app/rag/sqlite_store.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace agente::rag {

namespace {

// How often the background ingest looks for files no one told it about (attached by another
// process, or left by a dead one).
constexpr auto ingest_poll_interval = std::chrono::seconds(2);

}  // namespace

std::optional<Ranker> parse_ranker(const std::string& name) {
    if (name == "auto" || name == "default-2024-11-15" || name == "none" || name == "hybrid") return Ranker::hybrid;
    if (name == "vector" || name == "embedding") return Ranker::vector;
    if (name == "bm25" || name == "keyword" || name == "text") return Ranker::text;
    return std::nullopt;
}

namespace {

// The saved HNSW graphs of a PostgreSQL store go apart from rag.sqlite3's (index_files.hpp): the two
// number their stores independently.
std::string index_directory(const RagSettings& settings, const cluster::ClusterSettings& cluster) {
    std::string dir = rag_directory(settings);
    if (cluster.uses_postgres()) dir += "/postgres";
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace

Engine::Engine(RagSettings settings, std::shared_ptr<Embedder> embedder, cluster::ClusterSettings cluster)
    : settings_(std::move(settings)),
      embedder_(std::move(embedder)),
      cluster_(std::move(cluster)),
      path_(cluster_.uses_postgres() ? cluster::redacted_url(cluster_.postgres_url)
                                     : rag_directory(settings_) + "/rag.sqlite3"),
      owner_(this_process_owner()),
      indexes_(settings_, index_directory(settings_, cluster_)) {
    if (!cluster_.uses_postgres()) pool_.push_back(open_store());   // opens and migrates now
}

std::unique_ptr<Store> Engine::open_store() {
    if (cluster_.uses_postgres()) return open_pg_store(cluster_);
    return std::make_unique<SqliteStore>(path_, settings_.busy_timeout);
}

Engine::~Engine() {
    stopping_ = true;
    wake();
    if (ingest_thread_.joinable()) ingest_thread_.join();
}

Engine::Lease::~Lease() {
    if (!s_) return;
    std::lock_guard lock(e_->pool_mutex_);
    e_->pool_.push_back(std::move(s_));
}

Engine::Lease Engine::db() {
    {
        std::lock_guard lock(pool_mutex_);
        if (!pool_.empty()) {
            std::unique_ptr<Store> s = std::move(pool_.back());
            pool_.pop_back();
            return Lease(*this, std::move(s));
        }
    }
    return Lease(*this, open_store());
}

void Engine::start_background_ingest() {
    if (!ingest_thread_.joinable()) ingest_thread_ = std::thread([this] { background(); });
}

void Engine::wake() {
    {
        std::lock_guard lock(wake_mutex_);
        woken_ = true;
    }
    wake_cv_.notify_all();
}

void Engine::background() {
    // PostgreSQL down: said once when it goes and once when it is back, not every poll.
    bool store_down = false;
    auto unavailable = [&](const pg::Error& e) {
        if (!pg::database_unavailable(e)) return false;
        if (!store_down) spdlog::warn("rag: ingest waits for the store: {}", e.what());
        store_down = true;
        return true;
    };
    while (!stopping_) {
        std::optional<IngestOutcome> done;
        bool failed = false;
        try {
            done = ingest_next();
        } catch (const pg::Error& e) {
            failed = true;
            if (!unavailable(e)) spdlog::error("rag: ingest: {}", e.what());
        } catch (const std::exception& e) {
            spdlog::error("rag: ingest: {}", e.what());
        }
        if (done && on_ingested_) on_ingested_(*done);
        if (!failed && store_down) {
            spdlog::info("rag: the store is reachable again, ingest resumes");
            store_down = false;
        }
        if (done) continue;
        try {
            sweep_indexes();
        } catch (const pg::Error& e) {
            if (!unavailable(e)) spdlog::error("rag: {}", e.what());
        } catch (const std::exception& e) {
            spdlog::error("rag: {}", e.what());
        }
        std::unique_lock lock(wake_mutex_);
        wake_cv_.wait_for(lock, ingest_poll_interval, [this] { return woken_ || stopping_.load(); });
        woken_ = false;
    }
}

std::optional<IngestOutcome> Engine::ingest_next() {
    std::optional<Claim> c;
    {
        Lease l = db();
        std::vector<long> abandoned;
        {
            std::lock_guard lock(abandoned_mutex_);
            abandoned.swap(abandoned_);
        }
        try {
            for (std::size_t i = 0; i < abandoned.size(); ++i) l->release(abandoned[i], owner_);
        } catch (...) {   // still unavailable: kept for the next time
            std::lock_guard lock(abandoned_mutex_);
            abandoned_.insert(abandoned_.end(), abandoned.begin(), abandoned.end());
            throw;
        }
        c = l->claim_next(owner_, settings_.max_ingest_attempts);
    }
    if (!c) return std::nullopt;
    return ingest(*c);
}

bool Engine::delete_store(const std::string& store_id) {
    Lease l = db();
    std::optional<StoreRecord> rec = l->store(store_id);
    if (!rec || !l->delete_store(store_id)) return false;
    indexes_.forget(rec->rowid);
    return true;
}

void Engine::sweep_indexes() {
    std::vector<long> held = indexes_.stores();
    if (held.empty()) return;
    Lease l = db();
    for (long rowid : held)
        if (l->generation(rowid) < 0) indexes_.forget(rowid);
}

IngestOutcome Engine::fail(Store& db, const Claim& c, const std::string& code, const std::string& message) {
    spdlog::warn("rag: {} in {} failed: {}", c.file_id, c.store_id, message);
    db.fail(c.attachment, owner_, code, message);
    IngestOutcome o;
    o.status = "failed";
    o.error = message;
    return o;
}

}  // namespace agente::rag
