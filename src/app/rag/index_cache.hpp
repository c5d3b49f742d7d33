// The vector indexes of this process, one per vector store it has searched, loaded from SQLite on
// first use and brought up to date before each search when the store's generation moved (another
// process, or this one, ingested, detached or re-attributed files): new chunks are added, removed ones
// dropped, and the whole index reloaded when removals pile up or the store's model changed. A store
// that grows past exact_search_below gets an HNSW graph built on a thread of its own from a snapshot
// while searches go on exactly; the graph is swapped in when it is ready, and saved (index_files.hpp),
// so that the next process to hold the store loads it instead of building it again. Vectors added to
// (or removed from) a graph later are counted; past hnsw_save_every the graph is saved again, and at
// a graceful stop (this cache's destruction) whatever the count, so that a restart after files were
// added loads a graph that is current, or nearly, instead of building it again from scratch.
//
// Held once per process that searches: in the server, the dirty workers, never the HTTP workers.
#pragma once

#include "app/rag/index_files.hpp"
#include "app/rag/settings.hpp"
#include "app/rag/store.hpp"
#include "app/rag/vector_index.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

namespace agente::rag {

// A store as search sees it at one generation.
struct StoreView {
    long generation = -1;
    long epoch = 0;                              // bumped by every full reload
    std::string model;
    int dims = 0;
    std::vector<AttachmentMeta> files;           // by group
    std::vector<nlohmann::json> attributes;      // by group, parsed
    std::unordered_map<long, int> group_of;      // attachment rowid → group
    std::unique_ptr<VectorIndex> index;
};

class IndexCache {
public:
    // `index_dir`: where the built graphs are saved (index_files.hpp), "" for nowhere.
    IndexCache(const RagSettings& settings, std::string index_dir);
    ~IndexCache();   // stops the builder (a build in progress is finished first), saves changed graphs
    IndexCache(const IndexCache&) = delete;
    IndexCache& operator=(const IndexCache&) = delete;

    // The store's view, up to date with `rec` (read just before); stable while the lease is held.
    struct Lease {
        std::shared_lock<std::shared_mutex> lock;
        const StoreView* view = nullptr;
    };
    Lease get(Store& db, const StoreRecord& rec);

    std::size_t memory_bytes();
    // The stores held, and dropping one (deleted, here or by another process) with its saved graph.
    std::vector<long> stores();
    void forget(long store_rowid);
    // Waits until no HNSW build is queued or running (tests, benchmarks).
    void wait_for_builds();
    // Graphs this cache built, and graphs it loaded from disk instead.
    struct Counts {
        int built = 0;
        int loaded = 0;
        int saved = 0;   // saves of a graph already in use (after hnsw_save_every changes, at stop)
    };
    Counts counts();

private:
    struct Entry {
        long store_rowid = 0;
        std::shared_mutex mutex;
        StoreView view;
        bool building = false;   // queued for, or on, the builder thread: a load, a build or a save
        // Vectors added to or removed from the graph since it was saved (or loaded): written under the
        // exclusive lock, or by a save under the shared one (which no writer can hold meanwhile).
        std::atomic<std::size_t> unsaved{0};
    };
    void sync(Store& db, const StoreRecord& rec, const std::shared_ptr<Entry>& e);
    void full_load(Store& db, const StoreRecord& rec, StoreView& v);
    void load_files(Store& db, long store_rowid, StoreView& v);
    void builder();
    bool adopt_saved(const std::shared_ptr<Entry>& e);
    bool build(const std::shared_ptr<Entry>& e);
    bool save(const std::shared_ptr<Entry>& e, const char* when);

    RagSettings settings_;
    IndexFiles files_;
    Counts counts_;                               // under mutex_
    std::mutex mutex_;                            // entries_, queue_, stopping_
    std::map<long, std::shared_ptr<Entry>> entries_;
    std::deque<std::shared_ptr<Entry>> queue_;
    bool stopping_ = false;
    int running_builds_ = 0;
    std::condition_variable wake_;
    std::condition_variable idle_;
    std::thread thread_;
};

}  // namespace agente::rag
