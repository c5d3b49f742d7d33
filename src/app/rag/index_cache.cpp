#include "app/rag/index_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

namespace agente::rag {

namespace {

// Removed vectors stay in an HNSW graph (walked through, never returned); past this share of its
// rows the index is reloaded without them.
constexpr double reload_above_removed_share = 0.25;

}  // namespace

IndexCache::IndexCache(const RagSettings& settings, std::string index_dir)
    : settings_(settings), files_(std::move(index_dir)), thread_([this] { builder(); }) {}

IndexCache::~IndexCache() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    // A graceful stop: graphs changed since their last save are saved, so that the next process
    // loads them as they are now. (A process killed loses at most hnsw_save_every changes.)
    std::vector<std::shared_ptr<Entry>> all;
    {
        std::lock_guard lock(mutex_);
        for (auto& [rowid, e] : entries_) all.push_back(e);
    }
    for (auto& e : all)
        if (e->unsaved > 0) save(e, "at stop");
}

void IndexCache::load_files(Store& db, long store_rowid, StoreView& v) {
    std::vector<AttachmentMeta> files = db.completed_attachments(store_rowid);
    // Groups of attachments already indexed keep their number: the index's rows carry it.
    for (auto& f : files) {
        auto it = v.group_of.find(f.rowid);
        int g = 0;
        if (it == v.group_of.end()) {
            g = int(v.files.size());
            v.group_of[f.rowid] = g;
            v.files.push_back(f);
            v.attributes.emplace_back();
        } else {
            g = it->second;
            v.files[std::size_t(g)] = f;
        }
        nlohmann::json a = nlohmann::json::parse(f.attributes, nullptr, false);
        v.attributes[std::size_t(g)] = a.is_object() ? std::move(a) : nlohmann::json::object();
    }
}

void IndexCache::full_load(Store& db, const StoreRecord& rec, StoreView& v) {
    long epoch = v.epoch + 1;
    v = StoreView{};
    v.epoch = epoch;
    v.model = rec.embedding_model;
    v.dims = rec.dims;
    v.index = std::make_unique<VectorIndex>(rec.dims);
    load_files(db, rec.rowid, v);
    if (rec.embedding_model.empty() || rec.dims <= 0 || db.searches_vectors()) return;
    for (Vector& x : db.vectors(rec.rowid, rec.embedding_model, 0)) {
        if (int(x.values.size()) != rec.dims) continue;
        auto g = v.group_of.find(x.attachment);
        if (g != v.group_of.end()) v.index->add(x.chunk, g->second, x.values.data());
    }
}

void IndexCache::sync(Store& db, const StoreRecord& rec, const std::shared_ptr<Entry>& e) {
    StoreView& v = e->view;
    bool reload = !v.index || v.model != rec.embedding_model || v.dims != rec.dims;
    std::size_t rows_before = 0, removed_now = 0;
    if (!reload) {
        rows_before = v.index->rows();
        load_files(db, rec.rowid, v);
        std::vector<long> ids;
        if (!db.searches_vectors()) ids = db.chunk_ids(rec.rowid);   // else the index stays empty
        std::unordered_set<long> present(ids.begin(), ids.end());
        for (long label : v.index->labels())
            if (!present.count(label)) removed_now += v.index->remove(label);
        std::size_t removed = v.index->rows() - v.index->size();
        reload = v.index->uses_hnsw() && double(removed) > reload_above_removed_share * double(v.index->rows());
        if (!reload && !rec.embedding_model.empty() && !db.searches_vectors())
            for (Vector& x : db.vectors(rec.rowid, rec.embedding_model, v.index->max_label())) {
                auto g = v.group_of.find(x.attachment);
                if (g != v.group_of.end() && int(x.values.size()) == rec.dims) v.index->add(x.chunk, g->second, x.values.data());
            }
    }
    if (reload) full_load(db, rec, v);
    v.generation = rec.generation;
    if (reload) e->unsaved = 0;   // no graph now: the one built next is saved whole
    else if (v.index->uses_hnsw()) e->unsaved += v.index->rows() - rows_before + removed_now;
    bool want_graph = !v.index->uses_hnsw() && v.index->size() >= std::size_t(std::max(settings_.exact_search_below, 1));
    bool want_save = v.index->uses_hnsw() && e->unsaved >= std::size_t(settings_.hnsw_save_every);
    if ((want_graph || want_save) && !e->building) {
        e->building = true;
        std::lock_guard lock(mutex_);
        queue_.push_back(e);
        wake_.notify_all();
    }
}

IndexCache::Lease IndexCache::get(Store& db, const StoreRecord& rec) {
    std::shared_ptr<Entry> e;
    {
        std::lock_guard lock(mutex_);
        auto& slot = entries_[rec.rowid];
        if (!slot) {
            slot = std::make_shared<Entry>();
            slot->store_rowid = rec.rowid;
        }
        e = slot;
    }
    {
        std::shared_lock lock(e->mutex);
        if (e->view.index && e->view.generation == rec.generation) return {std::move(lock), &e->view};
    }
    {
        std::unique_lock lock(e->mutex);
        if (!e->view.index || e->view.generation != rec.generation) sync(db, rec, e);
    }
    // The entry stays alive while it is in entries_ (never erased while the cache lives).
    std::shared_lock lock(e->mutex);
    return {std::move(lock), &e->view};
}

void IndexCache::builder() {
    for (;;) {
        std::shared_ptr<Entry> e;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            e = queue_.front();
            queue_.pop_front();
            ++running_builds_;
        }
        bool has_graph = false;
        {
            std::shared_lock lock(e->mutex);
            has_graph = e->view.index && e->view.index->uses_hnsw();
        }
        bool loaded = false, built = false, saved = false;
        if (has_graph) {
            saved = save(e, "after changes");
        } else {
            loaded = adopt_saved(e);
            built = !loaded && build(e);
            // A loaded graph that was far behind (vectors inserted into it on loading) is saved now.
            if (loaded && e->unsaved >= std::size_t(settings_.hnsw_save_every)) saved = save(e, "after loading");
        }
        {
            std::unique_lock lock(e->mutex);
            e->building = false;
        }
        std::lock_guard lock(mutex_);
        counts_.loaded += loaded;
        counts_.built += built;
        counts_.saved += saved;
        --running_builds_;
        idle_.notify_all();
    }
}

// The graph a process saved for this store, when it still fits what SQLite holds: loaded without a
// lock (searches go on), matched and completed under the exclusive one.
bool IndexCache::adopt_saved(const std::shared_ptr<Entry>& e) {
    std::string model;
    int dims = 0;
    long epoch = 0;
    {
        std::shared_lock lock(e->mutex);
        model = e->view.model;
        dims = e->view.dims;
        epoch = e->view.epoch;
    }
    std::optional<SavedGraph> saved = files_.load(e->store_rowid, model, dims);
    if (!saved) return false;
    std::unique_lock lock(e->mutex);
    if (e->view.epoch != epoch || !e->view.index || e->view.index->uses_hnsw()) return false;
    // A graph of which less than this share still matches is built afresh, as the live index is
    // reloaded once that share of its rows is removed.
    std::size_t saved_rows = saved->labels.size();
    bool adopted = e->view.index->adopt_saved(std::move(saved->graph), saved->labels, 1.0 - reload_above_removed_share);
    if (!adopted) {
        spdlog::info("rag: the saved index of store {} is too far behind its store, rebuilding it", e->store_rowid);
        return false;
    }
    // The rows beyond the saved ones are the vectors inserted now: what the saved graph lacked.
    std::size_t inserted = e->view.index->rows() - std::min(saved_rows, e->view.index->rows());
    e->unsaved = inserted;
    spdlog::info("rag: the HNSW index of store {} loaded from disk ({} vectors, {} added since it was saved)",
                 e->store_rowid, e->view.index->size(), inserted);
    return true;
}

bool IndexCache::build(const std::shared_ptr<Entry>& e) {
    VectorIndex::Snapshot snap;
    long epoch = 0;
    std::string model;
    {
        std::shared_lock lock(e->mutex);
        snap = e->view.index->snapshot();
        epoch = e->view.epoch;
        model = e->view.model;
    }
    HnswOptions o{settings_.hnsw_m, settings_.hnsw_ef_construction, settings_.hnsw_ef_search, 1};
    std::shared_ptr<HnswGraph> graph;
    auto t0 = std::chrono::steady_clock::now();
    try {
        graph = VectorIndex::build(snap, o);
    } catch (const std::exception& ex) {
        spdlog::error("rag: building the HNSW index failed, search stays exact: {}", ex.what());
        return false;
    }
    {
        std::unique_lock lock(e->mutex);
        if (e->view.epoch != epoch || !e->view.index || e->view.index->uses_hnsw()) return false;
        e->view.index->adopt(std::move(graph));
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    {
        std::lock_guard lock(mutex_);   // a store forgotten (deleted) meanwhile leaves no file behind
        auto it = entries_.find(e->store_rowid);
        if (it == entries_.end() || it->second != e) return true;
    }
    // Saved under the shared lock: searches go on, changes to the index wait for the write.
    std::shared_lock lock(e->mutex);
    bool saved = e->view.epoch == epoch && e->view.index && e->view.index->uses_hnsw() &&
                 files_.save(e->store_rowid, model, *e->view.index);
    if (saved) e->unsaved = 0;
    spdlog::info("rag: the HNSW index of store {} built ({} vectors, {:.1f} s){}", e->store_rowid, snap.rows, seconds,
                 saved ? ", saved" : "");
    return true;
}

// Saves a graph in use (searches go on under the shared lock; changes wait for the write).
bool IndexCache::save(const std::shared_ptr<Entry>& e, const char* when) {
    {
        std::lock_guard lock(mutex_);   // a store forgotten (deleted) meanwhile leaves no file behind
        auto it = entries_.find(e->store_rowid);
        if (it == entries_.end() || it->second != e) return false;
    }
    std::shared_lock lock(e->mutex);
    if (!e->view.index || !e->view.index->uses_hnsw()) return false;
    std::size_t changes = e->unsaved;
    auto t0 = std::chrono::steady_clock::now();
    if (!files_.save(e->store_rowid, e->view.model, *e->view.index)) return false;
    e->unsaved = 0;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("rag: the HNSW index of store {} saved {} ({} vectors, {} changes since the last save, {:.1f} s)",
                 e->store_rowid, when, e->view.index->size(), changes, seconds);
    return true;
}

IndexCache::Counts IndexCache::counts() {
    std::lock_guard lock(mutex_);
    return counts_;
}

void IndexCache::wait_for_builds() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return queue_.empty() && running_builds_ == 0; });
}

std::vector<long> IndexCache::stores() {
    std::lock_guard lock(mutex_);
    std::vector<long> out;
    for (auto& [rowid, e] : entries_) out.push_back(rowid);
    return out;
}

void IndexCache::forget(long store_rowid) {
    std::lock_guard lock(mutex_);
    entries_.erase(store_rowid);   // a lease or a build still holding the entry keeps it alive until done
    files_.remove(store_rowid);
}

std::size_t IndexCache::memory_bytes() {
    std::vector<std::shared_ptr<Entry>> all;
    {
        std::lock_guard lock(mutex_);
        for (auto& [rowid, e] : entries_) all.push_back(e);
    }
    std::size_t total = 0;
    for (auto& e : all) {
        std::shared_lock lock(e->mutex);
        if (e->view.index) total += e->view.index->memory_bytes();
    }
    return total;
}

}  // namespace agente::rag
