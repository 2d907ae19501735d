//! The check listener's bytes as hyper should see them. hyper's HTTP/1 parser (httparse)
//! refuses a request whose field value holds a control byte (DEL, 0x01, NUL, a CR not followed
//! by LF) with a bare `400` of its own, before `jwtguard serve` sees the request: no JSON body,
//! no challenge, unlike every other host's answer for such an `Authorization` header. hyper
//! has no option to hand such a request over (`ignore_invalid_headers` drops the whole line
//! silently: a client could then make the proxy's `X-Original-URI` vanish and have the check
//! request's own path judged instead).
//!
//! So a connection's bytes are read through [`TextBytes`], which passes every such byte on as
//! 0xFF: a byte httparse takes as `obs-text`, and which no header `jwtguard serve` reads may
//! hold as text. An `Authorization` line with one is then refused by the check itself, as
//! every host refuses it (400 `invalid_request`, the JSON body, the challenge); a `DPoP` line
//! with one is a malformed proof; a forwarded host with one names no URL. HT, LF and CR before
//! LF (the message's framing) pass unchanged, so the message keeps its lines and its length:
//! a bare LF still ends a field line, as hyper reads it. Request bodies are never read by the
//! service, so rewriting a byte there changes nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What [`TextBytes`] passes on in place of a control byte.
pub const REPLACEMENT: u8 = 0xFF;

/// A control byte that no HTTP/1 field value may hold: everything below 0x20 but HT, CR and
/// LF (CR is judged by the byte after it), and DEL.
fn is_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7F
}

/// A stream whose reads pass control bytes on as [`REPLACEMENT`] (writes go through as they
/// are).
pub struct TextBytes<S> {
    inner: S,
    /// A CR ended the last read: whether it ends a line depends on the next byte, so it is
    /// handed on with that byte.
    held_cr: bool,
}

impl<S> TextBytes<S> {
    pub fn new(inner: S) -> TextBytes<S> {
        TextBytes {
            inner,
            held_cr: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TextBytes<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let start = buf.filled().len();
            let held = this.held_cr;
            if held {
                if buf.remaining() < 2 {
                    // No room to read the byte that decides: the CR goes on as it is.
                    buf.put_slice(b"\r");
                    this.held_cr = false;
                    return Poll::Ready(Ok(()));
                }
                buf.put_slice(b"\r");
            }
            let from = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => {
                    // Pending or an error: the held CR waits for the next read.
                    buf.set_filled(start);
                    return other;
                }
            }
            this.held_cr = false;
            let end = buf.filled().len();
            if end == from {
                // The end of the stream: a held CR is the last byte, as it came.
                return Poll::Ready(Ok(()));
            }
            let bytes = &mut buf.filled_mut()[start..end];
            let last = bytes.len() - 1;
            for i in 0..last {
                if is_control(bytes[i]) || (bytes[i] == b'\r' && bytes[i + 1] != b'\n') {
                    bytes[i] = REPLACEMENT;
                }
            }
            if is_control(bytes[last]) {
                bytes[last] = REPLACEMENT;
            }
            if bytes[last] != b'\r' {
                return Poll::Ready(Ok(()));
            }
            this.held_cr = true;
            buf.set_filled(end - 1);
            if end - 1 > start {
                return Poll::Ready(Ok(()));
            }
            // Only the CR came: read on (answering no bytes would read as the end).
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TextBytes<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::task::Waker;

    /// A reader handing out one chunk per read (`None`: not ready yet), then the end.
    struct Chunks(VecDeque<Option<Vec<u8>>>);

    impl AsyncRead for Chunks {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let chunks = &mut self.get_mut().0;
            match chunks.pop_front() {
                Some(None) => Poll::Pending,
                Some(Some(mut chunk)) => {
                    let rest = chunk.split_off(chunk.len().min(buf.remaining()));
                    buf.put_slice(&chunk);
                    if !rest.is_empty() {
                        chunks.push_front(Some(rest));
                    }
                    Poll::Ready(Ok(()))
                }
                None => Poll::Ready(Ok(())),
            }
        }
    }

    /// Everything the chunks read as, read by reads of `room` bytes at most.
    fn read_all(chunks: &[Option<&[u8]>], room: usize) -> Vec<u8> {
        let mut stream = TextBytes::new(Chunks(
            chunks.iter().map(|c| c.map(<[u8]>::to_vec)).collect(),
        ));
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        let mut pendings = 0;
        loop {
            let mut space = vec![0u8; room];
            let mut buf = ReadBuf::new(&mut space);
            match Pin::new(&mut stream).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return out,
                Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => {
                    pendings += 1;
                    assert!(pendings <= chunks.len(), "pending forever");
                }
            }
        }
    }

    #[test]
    fn control_bytes_read_as_0xff_and_the_framing_stays() {
        let head = b"GET / HTTP/1.1\r\nAuthorization: Bearer a\x7fb\x01c\x00d\te\r\n\r\n";
        let want = b"GET / HTTP/1.1\r\nAuthorization: Bearer a\xffb\xffc\xffd\te\r\n\r\n";
        for room in [1, 2, 3, 7, 64] {
            assert_eq!(read_all(&[Some(head)], room), want, "room {room}");
        }
        // A bare LF stays a line end; 0x80 and above are left alone.
        assert_eq!(read_all(&[Some(b"a\nb\x80\xff")], 64), b"a\nb\x80\xff");
    }

    #[test]
    fn a_cr_is_judged_by_the_byte_after_it_across_reads() {
        // A bare CR inside a value, at the end of a read, alone in a read, before a pause.
        let bare = read_all(&[Some(b"x: a\rb\r\n")], 64);
        assert_eq!(bare, b"x: a\xffb\r\n");
        let split = read_all(&[Some(b"x: a\r"), Some(b"b\r"), Some(b"\n")], 64);
        assert_eq!(split, b"x: a\xffb\r\n");
        let alone = read_all(
            &[Some(b"x: a"), Some(b"\r"), None, Some(b"\r"), Some(b"\n")],
            64,
        );
        assert_eq!(alone, b"x: a\xff\r\n");
        // A CR that ends the stream goes as it came.
        assert_eq!(read_all(&[Some(b"a\r")], 64), b"a\r");
        // No room beside a held CR for the byte after it: the CR goes on as it is.
        assert_eq!(read_all(&[Some(b"a\r"), Some(b"\n")], 1), b"a\r\n");
    }
}
