/**
 * Abort and close through the Promise facade: an aborted call rejects with a typed `Aborted`
 * carrying the signal's reason and is cancelled on the wire; calls during and after `close()` reject with a typed
 * `BridgeClosed`; close under load leaves no process behind.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Expect from "./expect.ts"
import { figure, kindOf, now, processesLeft, seconds, statsOf, stdio, tally, within } from "./harness.ts"

const tools = [{ name: "echo" }, { name: "slow", latencyMs: 5_000 }]

const settle = async (pending: Promise<unknown>): Promise<unknown> => {
  try {
    await within(20_000, pending, "call")
    return undefined
  } catch (error) {
    return error
  }
}

describe("lifecycle", () => {
  it(
    "abort: an aborted call rejects with a typed Aborted carrying the signal's reason, and is cancelled on the wire",
    async () => {
      const bridge = await Expect.createBridge({ mcpServers: { s: stdio({ tools }) } })
      let inFlightAfter = -1
      let aborted: unknown
      let preAborted: unknown
      let afterAbortMs = 0
      try {
        // The cold call (spawn, connect, call) is this machine's unit of time for the bound below.
        const coldAt = now()
        await bridge.callTool("s.echo", {})
        const unit = now() - coldAt
        const controller = new AbortController()
        const pending = settle(bridge.callTool("s.slow", {}, { signal: controller.signal }))
        await new Promise((r) => setTimeout(r, 200))
        const reason = new Error("user gave up")
        const abortedAt = now()
        controller.abort(reason)
        aborted = await pending
        afterAbortMs = now() - abortedAt
        const reason2 = new Error("never started")
        preAborted = await settle(bridge.callTool("s.echo", {}, { signal: AbortSignal.abort(reason2) }))
        await new Promise((r) => setTimeout(r, 200))
        inFlightAfter = statsOf((await bridge.callTool("s.__stats", {})).structuredContent).inFlight
        figure(
          "abort",
          `aborted call rejected ${seconds(afterAbortMs)} after abort with ${kindOf(aborted)}; pre-aborted: ${
            kindOf(preAborted)
          }; ${inFlightAfter} calls still running on the server`
        )
        assert.isTrue(Expect.isAborted(aborted, reason), `typed Aborted with the signal's reason: ${kindOf(aborted)}`)
        assert.isTrue(Expect.isAborted(preAborted, reason2), `pre-aborted: ${kindOf(preAborted)}`)
        assert.isAtMost(afterAbortMs, unit, "rejected within one measured connect of the abort")
        assert.strictEqual(inFlightAfter, 0, "the aborted call was cancelled on the wire")
      } finally {
        await bridge.close()
        const left = await processesLeft()
        assert.strictEqual(left, 0)
      }
    },
    60_000
  )

  it(
    "close-under-load: 200 calls in flight, 10 during and 10 after close() all reject with a typed BridgeClosed",
    async () => {
      const config = { mcpServers: { s: stdio({ tools }, { bridge: { pool: { max: 2 } } }) } }
      const bridge = await Expect.createBridge(config)
      await bridge.callTool("s.echo", {})
      const inFlight = Array.from({ length: 200 }, (_, i) => settle(bridge.callTool("s.slow", { i })))
      await new Promise((r) => setTimeout(r, 500))
      const closeStarted = now()
      const closing = within(20_000, bridge.close(), "close")
      const during = Array.from({ length: 10 }, (_, i) => settle(bridge.callTool("s.echo", { i })))
      let closeError: unknown
      await closing.catch((error) => (closeError = error))
      const closeMs = now() - closeStarted
      const after = await Promise.all(Array.from({ length: 10 }, (_, i) => settle(bridge.callTool("s.echo", { i }))))
      const inFlightErrors = await Promise.all(inFlight)
      const duringErrors = await Promise.all(during)
      const left = await processesLeft()
      figure(
        "close-under-load",
        `200 in flight: ${tally(inFlightErrors.map(kindOf))}; 10 during close: ${tally(duringErrors.map(kindOf))}; ` +
          `10 after: ${tally(after.map(kindOf))}; close took ${seconds(closeMs)}${
            closeError === undefined ? "" : ` and failed: ${kindOf(closeError)}`
          }, ${left} processes left`
      )
      assert.isUndefined(closeError)
      assert.isTrue(inFlightErrors.every(Expect.isBridgeClosed), "calls in flight reject with BridgeClosed")
      assert.isTrue(duringErrors.every(Expect.isBridgeClosed), "calls during close reject with BridgeClosed")
      assert.isTrue(after.every(Expect.isBridgeClosed), "calls after close reject with BridgeClosed")
      assert.strictEqual(left, 0)
    },
    60_000
  )
})
