/**
 * The HTTP test servers' listening and closing on 127.0.0.1.
 *
 * @internal
 */
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"

/** Listens on 127.0.0.1 (`port`, or an ephemeral one) and resolves with the port; rejects if it cannot. */
export const listenLoopback = (server: Server, port: number | undefined): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port ?? 0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve((server.address() as AddressInfo).port)
    })
  })

/** Stops listening and drops every open connection; resolves once the server is closed. */
export const closeAll = (server: Server): Promise<void> =>
  new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
