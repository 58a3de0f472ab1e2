// Forensics: record matching traffic beyond the ring
/*
 * Records every entry matching a KFL query (env.RECORDING_KFL, default
 * "http"): each entry as a JSON line, and, when the recording rotates, the
 * packets of every stream it saw as one pcap (from the ring, or from the
 * packets this script's session kept when the ring flushed them). Rotation
 * (env.RECORDING_ROTATE, a cron expression, default hourly) packs the
 * recording into <dir>.tar.gz under the scripting directory and starts a new
 * one; env.RECORDING_WEBHOOK, when set, is told about every archive. Only
 * the newest env.RECORDING_KEEP archives this script made are kept (default
 * 24; 0 keeps all), so it stays within --script-storage-limit.
 *
 * Written in Kubeshark's style: the same hooks, helpers and argument orders.
 */

var QUERY = env.RECORDING_KFL || "http";
var ROTATE = env.RECORDING_ROTATE || "0 * * * *";
var ROOT = env.RECORDING_DIR || "recordings";
var KEEP = env.RECORDING_KEEP === undefined ? 24 : parseInt(env.RECORDING_KEEP, 10);

if (!kfl.validate(QUERY)) {
  throw new Error("RECORDING_KFL is not a valid KFL query: " + QUERY);
}

var recording = null;   // { dir, streams: {stream: true}, entries }
var archives = [];      // the archives this script made, oldest first

function startRecording() {
  recording = { dir: file.mkdirTemp("recording", ROOT), streams: {}, entries: 0 };
  console.log("recording to", recording.dir);
}

function onItemCaptured(data) {
  if (!kfl.match(QUERY, data)) return;
  if (recording === null) startRecording();
  file.append(recording.dir + "/entries.jsonl", JSON.stringify(data) + "\n");
  recording.streams[data.stream] = true;
  recording.entries++;
}

function rotate() {
  if (recording === null || recording.entries === 0) return;
  var streams = Object.keys(recording.streams);
  var packets = pcap.snapshot(streams, recording.dir);
  var archive = file.tar(recording.dir);
  file.delete(recording.dir);
  archives.push(archive);
  while (KEEP > 0 && archives.length > KEEP) file.delete(archives.shift());
  console.log("recording rotated:", archive, recording.entries, "entries,", streams.length, "streams, packets in",
              packets.substring(packets.lastIndexOf("/") + 1));
  if (env.RECORDING_WEBHOOK) {
    vendor.webhook("POST", env.RECORDING_WEBHOOK, JSON.stringify({
      node: utils.nodeName(), archive: archive, entries: recording.entries, streams: streams.length
    }), { "Content-Type": "application/json" });
  }
  recording = null;
}

function onJobFailed(tag, cron, limit, err) {
  console.error("job", tag, "failed:", err);
}

jobs.schedule("rotate-recording", ROTATE, rotate, 0);
