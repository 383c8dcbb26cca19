//! Our server against aiocoap (Python) as the client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;
use switchboard_coap::Config;

const SCRIPT: &str = r#"
import asyncio, json, sys
from aiocoap import Context, Message, GET, PUT, POST, DELETE
from aiocoap.numbers.codes import Code

base = sys.argv[1]
out = {}

async def req(ctx, code, path, payload=b"", cf=None, observe=None):
    m = Message(code=code, uri=base + path, payload=payload)
    if cf is not None:
        m.opt.content_format = cf
    if observe is not None:
        m.opt.observe = observe
    return ctx.request(m)

async def main():
    ctx = await Context.create_client_context()
    r = await (await req(ctx, GET, "/a/b")).response
    out["get_missing"] = str(r.code)
    r = await (await req(ctx, PUT, "/a/b", b'{"x":1}', cf=50)).response
    out["put"] = str(r.code)
    r = await (await req(ctx, GET, "/a/b")).response
    out["get"] = [str(r.code), r.payload.decode(), r.opt.content_format, r.opt.etag is not None, r.opt.max_age]
    r = await (await req(ctx, POST, "/ev/x", b"hello", cf=0)).response
    out["post"] = str(r.code)
    big = bytes((65 + i % 26) for i in range(4096))
    r = await (await req(ctx, PUT, "/big", big, cf=42)).response
    out["put_big"] = str(r.code)
    r = await (await req(ctx, GET, "/big")).response
    out["get_big"] = [str(r.code), r.payload == big]
    r = await (await req(ctx, PUT, "/x", b"x", cf=9999)).response
    out["bad_cf"] = str(r.code)
    r = await (await req(ctx, PUT, "/x", b"y" * 5000)).response
    out["too_large"] = str(r.code)
    r = await (await req(ctx, GET, "/.well-known/core?href=/a*")).response
    out["wkc"] = r.payload.decode()
    # Observe: three notifications after the first response.
    r = await (await req(ctx, PUT, "/obs/t", b"0", cf=0)).response
    obs_req = await req(ctx, GET, "/obs/t", observe=0)
    first = await obs_req.response
    seen = [first.payload.decode()]
    # Each new value is PUT once the previous notification arrived.
    async def collect():
        await (await req(ctx, PUT, "/obs/t", b"1", cf=0)).response
        async for n in obs_req.observation:
            seen.append(n.payload.decode())
            if len(seen) == 4:
                break
            await (await req(ctx, PUT, "/obs/t", str(len(seen)).encode(), cf=0)).response
    await asyncio.wait_for(collect(), 10)
    out["observe"] = seen
    # Observe a value larger than one block: notifications carry block 0,
    # the client fetches the rest (RFC 7959 3.4).
    big1 = bytes((97 + i % 26) for i in range(3000))
    big2 = bytes((65 + i % 26) for i in range(3100))
    await (await req(ctx, PUT, "/obs/big", big1, cf=0)).response
    obig = await req(ctx, GET, "/obs/big", observe=0)
    f = await obig.response
    bigseen = [len(f.payload) == 3000 and f.payload == big1]
    async def collect_big():
        await (await req(ctx, PUT, "/obs/big", big2, cf=0)).response
        async for n in obig.observation:
            bigseen.append(n.payload == big2)
            break
    await asyncio.wait_for(collect_big(), 10)
    out["observe_big"] = bigseen
    r = await (await req(ctx, DELETE, "/a/b")).response
    out["delete"] = str(r.code)
    r = await (await req(ctx, GET, "/a/b")).response
    out["get_deleted"] = str(r.code)
    print(json.dumps(out))
    await ctx.shutdown()

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_observe_blockwise_errors_with_aiocoap() {
    let cfg = Config {
        max_payload: switchboard_model::units::ByteSize(4096),
        ..Config::default()
    };
    let s = start(cfg).await;
    let base = format!("coap://127.0.0.1:{}", s.addr.port());
    let o = py(SCRIPT, &[&base]).await;
    assert!(
        o.status.success(),
        "aiocoap script failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let code = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    assert!(code("get_missing").contains("4.04"), "{v}");
    assert!(code("put").contains("2.04"), "{v}");
    assert_eq!(v["get"][1], r#"{"x":1}"#);
    assert_eq!(v["get"][2], 50);
    assert_eq!(v["get"][3], true);
    assert_eq!(v["get"][4], 60);
    assert!(code("post").contains("2.01"), "{v}");
    assert!(code("put_big").contains("2.04"), "{v}");
    assert_eq!(v["get_big"][1], true, "{v}");
    assert!(code("bad_cf").contains("4.15"), "{v}");
    assert!(code("too_large").contains("4.13"), "{v}");
    assert!(
        code("wkc").contains("</a/b>") && !code("wkc").contains("big"),
        "{v}"
    );
    assert_eq!(v["observe"], serde_json::json!(["0", "1", "2", "3"]), "{v}");
    assert_eq!(v["observe_big"], serde_json::json!([true, true]), "{v}");
    assert!(code("delete").contains("2.02"), "{v}");
    assert!(code("get_deleted").contains("4.04"), "{v}");
}
