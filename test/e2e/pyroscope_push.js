// pyroscope_push.js -- a real Pyroscope client (the npm package
// @pyroscope/nodejs, unchanged) pushing to firn's Pyroscope-compatible
// /ingest while this process burns CPU in a function of a known name.
//
// usage: node pyroscope_push.js SERVER_URL APP_NAME SECONDS
// Profiles are flushed every second, and once more on stop.
'use strict';

const Pyroscope = require('@pyroscope/nodejs');

const [serverAddress, appName, seconds] = process.argv.slice(2);
if (!serverAddress || !appName || !seconds) {
  console.error('usage: node pyroscope_push.js SERVER_URL APP_NAME SECONDS');
  process.exit(2);
}

// The hot function the flame graph must show.
function burnCpuForFirn(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 10000; i++) x = (x * 31 + i) % 1000003;
  }
  return x;
}

async function main() {
  Pyroscope.init({
    serverAddress,
    appName,
    flushIntervalMs: 1000,
    tags: { env: 'e2e' },
  });
  Pyroscope.start();
  const deadline = Date.now() + Number(seconds) * 1000;
  // Burn in slices, yielding so the profiler's flush timer can run.
  while (Date.now() < deadline) {
    burnCpuForFirn(100);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Pyroscope.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
