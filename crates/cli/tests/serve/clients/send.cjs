// Sends tracking calls to a Junction server with Segment's official Node.js library.
//
// Reads {"host", "writeKey", "calls": [...]} on stdin (see send.py for a call's shape). Prints
// one JSON line naming the library, then one per call with the messageId and timestamp the
// library gave it, flushes, and exits 1 if the library reported any delivery error. Run by
// crates/cli/tests/serve/clients.rs with JUNCTION_TEST_NODE_MODULES set by scripts/test.
'use strict'

const path = require('node:path')

const modules = process.env.JUNCTION_TEST_NODE_MODULES
if (!modules) {
  console.error('JUNCTION_TEST_NODE_MODULES is not set: run the tests with scripts/test')
  process.exit(2)
}
const { Analytics } = require(path.join(modules, '@segment/analytics-node'))
const { version } = require(path.join(modules, '@segment/analytics-node', 'package.json'))

async function main() {
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  const spec = JSON.parse(input)
  const errors = []
  // A refused batch should fail the test quickly rather than be retried for minutes.
  const analytics = new Analytics({
    writeKey: spec.writeKey,
    host: spec.host,
    maxRetries: 2,
    flushInterval: 200,
  })
  analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))))
  console.log(JSON.stringify({ library: 'analytics-node', version }))

  const delivered = spec.calls.map(
    (call) =>
      new Promise((resolve) => {
        const done = (err, ctx) => {
          if (err) errors.push(String(err.reason || err.message || err))
          resolve(ctx && ctx.event)
        }
        const common = { userId: call.userId }
        if (call.timestamp) common.timestamp = call.timestamp
        if (call.type === 'identify') {
          analytics.identify({ ...common, traits: call.traits }, done)
        } else if (call.type === 'group') {
          analytics.group({ ...common, groupId: call.groupId, traits: call.traits }, done)
        } else if (call.type === 'track') {
          analytics.track({ ...common, event: call.event, properties: call.properties }, done)
        } else {
          errors.push(`unknown call type ${call.type}`)
          resolve(undefined)
        }
      }),
  )
  await analytics.closeAndFlush({ timeout: 30000 })
  for (const event of await Promise.all(delivered)) {
    if (!event) continue
    const timestamp = event.timestamp instanceof Date ? event.timestamp.toISOString() : event.timestamp
    console.log(JSON.stringify({ messageId: event.messageId, timestamp }))
  }
  if (errors.length > 0) {
    console.error(JSON.stringify({ errors }))
    process.exit(1)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
