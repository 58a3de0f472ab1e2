/// JavaScript run in every script's heap before the script: the parts of
/// Kubeshark's helper API that hold script functions (jobs) or fan a batch
/// out to a hook (packets), and `test.pass/fail`. The natives it calls live under `__ks`.
enum Prelude {
    static let source = #"""
    (function (g) {
      var ks = g.__ks;
      var table = {};
      function runJob(tag) {
        var job = table[tag];
        if (!job) return false;
        job.runs++;
        var failure = null;
        try {
          job.fn.apply(null, job.args);
        } catch (e) {
          failure = (e && e.stack) ? String(e.stack) : String(e);
        }
        if (job.limit > 0 && job.runs >= job.limit) {
          delete table[tag];
          ks.jobRemove(tag);
        }
        if (failure === null) {
          if (typeof g.onJobPassed === 'function') g.onJobPassed(tag, job.cron, job.limit);
        } else {
          ks.jobFailed(tag, failure);
          if (typeof g.onJobFailed === 'function') g.onJobFailed(tag, job.cron, job.limit, failure);
        }
        return failure === null;
      }
      g.jobs = {
        schedule: function (tag, cron, fn, limit) {
          if (typeof fn !== 'function') throw new TypeError('jobs.schedule(tag, cron, fn, limit): fn is not a function');
          tag = String(tag);
          ks.jobSchedule(tag, String(cron));
          table[tag] = { fn: fn, cron: String(cron), limit: (limit | 0), runs: 0,
                         args: Array.prototype.slice.call(arguments, 4) };
        },
        remove: function (tag) { tag = String(tag); delete table[tag]; ks.jobRemove(tag); },
        removeAll: function () { for (var t in table) { if (table.hasOwnProperty(t)) g.jobs.remove(t); } },
        list: function () {
          var out = [];
          for (var t in table) { if (table.hasOwnProperty(t)) out.push(t); }
          return out;
        },
        run: function (tag) { return runJob(String(tag)); },
        runAll: function () { for (var t in table) { if (table.hasOwnProperty(t)) runJob(t); } },
        scheduler: {
          isRunning: function () { return ks.schedulerRunning(); },
          start: function () { ks.schedulerSet(true); },
          stop: function () { ks.schedulerSet(false); }
        }
      };
      g.__ksRunJob = runJob;
      // Kubeshark's test helpers: mark an entry passed or failed (onItemQueried returns it).
      g.test = {
        pass: function (data) { data.passed = true; data.failed = false; return data; },
        fail: function (data) { data.passed = false; data.failed = true; return data; }
      };
      // Entries arrive as one JSON array per batch; the hook is called per entry,
      // each call with a budget of its own (restart: the engine allows one per
      // entry), and a throw ends only that entry's call (logged by itemThrew,
      // which answers false when the heap ran out of memory: that stops the script).
      var restart = ks.restart, itemThrew = ks.itemThrew, matchItem = ks.kflMatchItem;
      delete ks.restart; delete ks.itemThrew; delete ks.kflMatchItem;
      var current = null, currentIndex = -1, match = g.kfl.match;
      // kfl.match on the hook's own argument reads the entry as captured (its
      // JSON, kept by the host) instead of encoding the object again.
      g.kfl.match = function (query, entry) {
        if (entry === current && current !== null) return matchItem(query, currentIndex);
        return match(query, entry);
      };
      g.__ksEntries = function (list) {
        for (var i = 0; i < list.length; i++) {
          restart();
          var hook = g.onItemCaptured;
          current = list[i]; currentIndex = i; list[i] = null;
          if (typeof hook !== 'function') continue;
          try {
            hook(current);
          } catch (e) {
            current = null;
            if (!itemThrew((e && e.stack) ? String(e.stack) : String(e))) throw e;
          }
        }
        current = null;
      };
      // Packets arrive as one flat array of five numbers each (see PacketTail).
      g.__ksPackets = function (b) {
        var hook = g.onPacketCaptured;
        if (typeof hook !== 'function') return;
        // A throw ends only that packet's call (the batch shares one budget).
        for (var i = 0; i + 4 < b.length; i += 5) {
          try {
            hook({ timestamp: b[i], captureLength: b[i + 1], length: b[i + 2],
                   truncated: b[i + 3] !== 0, fragmented: b[i + 4] !== 0 });
          } catch (e) {
            if (!itemThrew((e && e.stack) ? String(e.stack) : String(e), 'onPacketCaptured')) throw e;
          }
        }
      };
    })(this);
    """#
}
