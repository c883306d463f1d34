"""How a failed SDK call is described for logs: the gRPC status, and server text only when it is safe."""

from __future__ import annotations

import grpc
import grpc.aio

__all__ = ["CREDENTIAL_CODES", "rpc_detail"]

CREDENTIAL_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def rpc_detail(error: grpc.aio.AioRpcError) -> str:
    """``CODE: server text`` for logs; for credential errors the code alone, since the text may echo a key."""
    code = error.code()
    if code in CREDENTIAL_CODES:
        return code.name
    details = error.details()
    return f"{code.name}: {details}" if details else code.name
