// A redis-server of the test's own on a free loopback port (no persistence), with the faults the tests inject:
// pause (SIGSTOP), resume (SIGCONT), kill (SIGKILL) and restart on the same port. Waits on the server's own
// "Ready to accept connections" line, never on time.
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"

export interface RedisServer {
  readonly url: string
  readonly port: number
  readonly pause: () => void
  readonly resume: () => void
  readonly kill: () => Promise<void>
  readonly restart: () => Promise<void>
  readonly stop: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const launch = (port: number) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no"
    ], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes("Ready to accept connections")) {
        child.stdout!.off("data", onData)
        child.stdout!.resume()
        resolve(child)
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.resume()
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${out}`)))
  })

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

export const startRedis = async (): Promise<RedisServer> => {
  const port = await freePort()
  let child = await launch(port)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
    kill: async () => {
      child.kill("SIGKILL")
      await exited(child)
    },
    restart: async () => {
      child = await launch(port)
    },
    stop: async () => {
      child.kill("SIGCONT")
      child.kill("SIGKILL")
      await exited(child)
    }
  }
}
