/// Moves packets from a capture backend into a dissection session.
public enum CaptureRunner {
    /// Reads every packet of `backend` into `session` until the source ends.
    /// - Returns: the error that stopped the source early, after every packet
    ///   before it was processed (a truncated file still yields its entries).
    @discardableResult
    public static func drain(_ backend: CaptureBackend, into session: DissectionSession, batch: Int = 512) -> CaptureError? {
        drain(backend, into: session.process, batch: batch)
    }

    /// Reads every packet of `backend` into `handler` until the source ends.
    @discardableResult
    public static func drain(
        _ backend: CaptureBackend, into handler: (CapturedPacket) -> Void, batch: Int = 512
    ) -> CaptureError? {
        while true {
            do {
                switch try backend.read(maxPackets: batch, handler) {
                case .packets, .timeout: continue
                case .end: return nil
                }
            } catch {
                return error
            }
        }
    }
}
