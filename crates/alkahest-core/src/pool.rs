//! `ExprPool`: the hash-consed expression DAG.
//!
//! Every node is stored once; building the same structure twice returns the same
//! [`ExprId`], from any thread. Nodes are never removed: a pool lives as long as the
//! expressions that point into it. Canonicalising constructors live in `canon.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, Weak};

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};

/// Index of a node in its pool. Equal ids in one pool mean equal expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

impl ExprId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One node of the DAG. Constants are stored by their bits (NaNs made canonical) so
/// that `-0.0` and `0.0` stay distinct and every NaN is one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Symbol(Arc<str>),
    Const(u64),
    Unary(UnaryOp, ExprId),
    Binary(BinaryOp, [ExprId; 2]),
    /// `where(cond, then, else)`.
    Select([ExprId; 3]),
}

impl Node {
    pub fn constant(value: f64) -> Node {
        let value = if value.is_nan() { f64::NAN } else { value };
        Node::Const(value.to_bits())
    }

    /// The value of a constant node.
    pub fn as_const(&self) -> Option<f64> {
        match *self {
            Node::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    /// Children in evaluation order.
    pub fn children(&self) -> &[ExprId] {
        match self {
            Node::Symbol(_) | Node::Const(_) => &[],
            Node::Unary(_, a) => std::slice::from_ref(a),
            Node::Binary(_, args) => args,
            Node::Select(args) => args,
        }
    }
}

/// Pool locks and `fork`: a child process has only the thread that forked, so a pool
/// lock another thread held at that moment would stay held in the child forever. Every
/// holder of a pool lock passes this gate; [`close_for_fork`] (run just before a fork)
/// stops new holders and waits for the current ones, and [`open_after_fork`] lets them
/// in again, in parent and child. A thread already holding a pass is never stopped, so
/// nested passes cannot deadlock with a fork.
mod fork_gate {
    use super::*;
    use std::cell::Cell;

    static HOLDERS: AtomicUsize = AtomicUsize::new(0);
    static CLOSED: AtomicBool = AtomicBool::new(false);
    thread_local! {
        static DEPTH: Cell<usize> = const { Cell::new(0) };
    }

    /// Held while a pool lock is held.
    pub struct Pass(());

    pub fn enter() -> Pass {
        if DEPTH.with(|d| d.get()) == 0 {
            loop {
                while CLOSED.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                HOLDERS.fetch_add(1, Ordering::SeqCst);
                if !CLOSED.load(Ordering::SeqCst) {
                    break;
                }
                HOLDERS.fetch_sub(1, Ordering::SeqCst);
            }
        }
        DEPTH.with(|d| d.set(d.get() + 1));
        Pass(())
    }

    impl Drop for Pass {
        fn drop(&mut self) {
            let depth = DEPTH.with(|d| {
                d.set(d.get() - 1);
                d.get()
            });
            if depth == 0 {
                HOLDERS.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    pub fn close() {
        CLOSED.store(true, Ordering::SeqCst);
        while HOLDERS.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    pub fn open() {
        CLOSED.store(false, Ordering::SeqCst);
    }
}

/// Waits until no thread holds a pool lock and keeps new ones out: call just before
/// `fork` (from the thread that forks), then [`open_after_fork`] in parent and child.
pub fn close_for_fork() {
    fork_gate::close();
}

/// Undoes [`close_for_fork`].
pub fn open_after_fork() {
    fork_gate::open();
}

#[derive(Default)]
pub(crate) struct PoolData {
    pub(crate) nodes: Vec<Node>,
    index: HashMap<Node, ExprId>,
}

/// Read access to the nodes of a pool, held for the duration of a walk.
pub struct PoolView<'a> {
    data: RwLockReadGuard<'a, PoolData>,
    _pass: fork_gate::Pass, // dropped after the lock (fields drop in order)
}

impl PoolView<'_> {
    pub fn node(&self, id: ExprId) -> &Node {
        &self.data.nodes[id.index()]
    }

    pub fn len(&self) -> usize {
        self.data.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.nodes.is_empty()
    }
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// Which pool, in which process, a pool's nodes first came from: `(process token, uid)`.
/// Pickled expressions carry it, so expressions of one pool, unpickled one by one in
/// another process, land in one pool there and can be combined.
pub type Origin = [u64; 3];

/// A random number per process (std's hasher keys are seeded from the OS).
fn process_token() -> [u64; 2] {
    use std::hash::{BuildHasher, Hasher};
    static TOKEN: OnceLock<[u64; 2]> = OnceLock::new();
    *TOKEN.get_or_init(|| {
        let draw = || std::collections::hash_map::RandomState::new().build_hasher().finish();
        [draw(), draw()]
    })
}

/// The live pools by origin (weak: the registry never keeps a pool alive).
static BY_ORIGIN: Mutex<Vec<(Origin, Weak<ExprPool>)>> = Mutex::new(Vec::new());

/// A thread-safe hash-consing store of expression nodes.
pub struct ExprPool {
    data: RwLock<PoolData>,
    uid: u64,
    origin: OnceLock<Origin>,
}

impl Default for ExprPool {
    fn default() -> Self {
        Self::new()
    }
}

impl ExprPool {
    pub fn new() -> Self {
        ExprPool {
            data: RwLock::new(PoolData::default()),
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            origin: OnceLock::new(),
        }
    }

    /// Where this pool's nodes first came from: itself, unless it was made by
    /// [`ExprPool::for_origin`] for another process's pool.
    pub fn origin(&self) -> Origin {
        *self.origin.get_or_init(|| {
            let [a, b] = process_token();
            [a, b, self.uid]
        })
    }

    /// Makes `pool` findable by [`ExprPool::for_origin`] (done when it is pickled).
    pub fn register(pool: &Arc<ExprPool>) {
        let origin = pool.origin();
        let mut table = BY_ORIGIN.lock().unwrap_or_else(|e| e.into_inner());
        table.retain(|(_, w)| w.strong_count() > 0);
        if !table.iter().any(|(o, w)| *o == origin && w.strong_count() > 0) {
            table.push((origin, Arc::downgrade(pool)));
        }
    }

    /// The live pool of this process for `origin`, or a new one registered for it: what
    /// unpickled expressions load into.
    pub fn for_origin(origin: Origin) -> Arc<ExprPool> {
        let mut table = BY_ORIGIN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = table.iter().filter(|(o, _)| *o == origin).find_map(|(_, w)| w.upgrade()) {
            return pool;
        }
        table.retain(|(_, w)| w.strong_count() > 0);
        let pool = Arc::new(ExprPool::new());
        let _ = pool.origin.set(origin);
        table.push((origin, Arc::downgrade(&pool)));
        pool
    }

    /// A number unique to this pool within the process (cache keys use it).
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// The id of `node`, adding it if it is new. Does not canonicalise.
    pub fn intern(&self, node: Node) -> Result<ExprId> {
        if let Some(&id) = self.read().data.index.get(&node) {
            return Ok(id);
        }
        let _pass = fork_gate::enter();
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = data.index.get(&node) {
            return Ok(id);
        }
        let id = u32::try_from(data.nodes.len())
            .map(ExprId)
            .map_err(|_| Error::Expression("the pool is full (2^32 nodes)".into()))?;
        data.nodes.push(node.clone());
        data.index.insert(node, id);
        Ok(id)
    }

    /// Read access to all nodes (a shared lock; other readers proceed).
    pub fn read(&self) -> PoolView<'_> {
        let pass = fork_gate::enter();
        PoolView { data: self.data.read().unwrap_or_else(|e| e.into_inner()), _pass: pass }
    }

    /// A copy of one node.
    pub fn node(&self, id: ExprId) -> Node {
        self.read().node(id).clone()
    }

    /// Number of distinct nodes.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The symbol named `name` (the same id every time).
    pub fn symbol(&self, name: &str) -> Result<ExprId> {
        if name.is_empty() {
            return Err(Error::Expression("a symbol needs a non-empty name".into()));
        }
        self.intern(Node::Symbol(Arc::from(name)))
    }

    /// A floating-point constant.
    pub fn constant(&self, value: f64) -> Result<ExprId> {
        self.intern(Node::constant(value))
    }

    /// The symbols an expression depends on, in order of first appearance (depth first).
    pub fn free_symbols(&self, roots: &[ExprId]) -> Vec<ExprId> {
        let view = self.read();
        let mut seen = vec![false; view.len()];
        let mut out = Vec::new();
        let mut stack: Vec<ExprId> = roots.iter().rev().copied().collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.index()], true) {
                continue;
            }
            let node = view.node(id);
            if let Node::Symbol(_) = node {
                out.push(id);
            }
            stack.extend(node.children().iter().rev());
        }
        out
    }
}

/// The nodes under `roots`, children before parents, each once; and each node's position
/// in that order. Iterative (depth costs heap, not stack).
pub fn topological_order(view: &PoolView<'_>, roots: &[ExprId]) -> (Vec<ExprId>, HashMap<ExprId, usize>) {
    let mut order = Vec::new();
    let mut index: HashMap<ExprId, usize> = HashMap::new();
    let mut stack: Vec<(ExprId, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
    while let Some((id, children_done)) = stack.pop() {
        if index.contains_key(&id) {
            continue;
        }
        if children_done {
            index.insert(id, order.len());
            order.push(id);
            continue;
        }
        stack.push((id, true));
        for &c in view.node(id).children().iter().rev() {
            if !index.contains_key(&c) {
                stack.push((c, false));
            }
        }
    }
    (order, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_structural() {
        let pool = ExprPool::new();
        let x = pool.symbol("x").unwrap();
        assert_eq!(pool.symbol("x").unwrap(), x);
        let a = pool.intern(Node::Unary(UnaryOp::Sin, x)).unwrap();
        assert_eq!(pool.intern(Node::Unary(UnaryOp::Sin, x)).unwrap(), a);
        assert_ne!(pool.constant(0.0).unwrap(), pool.constant(-0.0).unwrap());
        assert_eq!(pool.constant(f64::NAN).unwrap(), pool.constant(-f64::NAN).unwrap());
    }

    #[test]
    fn topological_order_puts_children_first_once() {
        let pool = ExprPool::new();
        let x = pool.symbol("x").unwrap();
        let s = pool.intern(Node::Unary(UnaryOp::Sin, x)).unwrap();
        let m = pool.intern(Node::Binary(BinaryOp::Mul, [s, s])).unwrap();
        let a = pool.intern(Node::Binary(BinaryOp::Add, [m, x])).unwrap();
        let (order, index) = topological_order(&pool.read(), &[a, s]);
        assert_eq!(order, vec![x, s, m, a]);
        assert_eq!(index[&a], 3);
        let mut deep = x;
        for _ in 0..200_000 {
            deep = pool.intern(Node::Unary(UnaryOp::Neg, deep)).unwrap();
        }
        assert_eq!(topological_order(&pool.read(), &[deep]).0.len(), 200_001);
    }

    #[test]
    fn children_views_match_fields() {
        let (a, b, c) = (ExprId(1), ExprId(2), ExprId(3));
        assert_eq!(Node::Binary(BinaryOp::Add, [a, b]).children(), &[a, b]);
        assert_eq!(Node::Select([a, b, c]).children(), &[a, b, c]);
        assert_eq!(Node::Unary(UnaryOp::Sin, c).children(), &[c]);
    }

    #[test]
    fn pools_are_found_by_origin_while_alive() {
        let pool = Arc::new(ExprPool::new());
        ExprPool::register(&pool);
        assert!(Arc::ptr_eq(&ExprPool::for_origin(pool.origin()), &pool));
        let foreign = [1, 2, 3];
        let made = ExprPool::for_origin(foreign);
        assert_eq!(made.origin(), foreign);
        assert!(Arc::ptr_eq(&ExprPool::for_origin(foreign), &made));
        drop(made);
        assert_eq!(ExprPool::for_origin(foreign).len(), 0, "a dropped pool is not kept alive");
    }

    #[test]
    fn interning_is_consistent_across_threads() {
        let pool = Arc::new(ExprPool::new());
        let ids: Vec<Vec<ExprId>> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || (0..500).map(|i| pool.symbol(&format!("s{i}")).unwrap()).collect())
            })
            .map(|h| h.join().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(pool.len(), 500);
    }
}
