// Fixed-size pool that runs numbered tasks; the calling thread takes part.
//
// Which worker runs which task is left to chance, so callers must make every
// task's result independent of that (the GEMM driver does: a task owns a C
// tile and computes it the same way on any worker).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ganfleet {

class ThreadPool {
 public:
  using Job = std::function<void(int task, int worker)>;

  explicit ThreadPool(int threads);
  // Joins the workers: they only ever wait on the pool's own condition.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs job(t, worker) for every t in [0, ntasks), worker in [0, threads()),
  // and returns when all are done. Not reentrant.
  void Run(int ntasks, const Job& job);

 private:
  void WorkerLoop(int worker);
  void Drain(int worker);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const Job* job_ = nullptr;
  int ntasks_ = 0;
  std::atomic<int> next_{0};
  int busy_ = 0;
  unsigned long generation_ = 0;
  bool stop_ = false;
};

}  // namespace ganfleet
