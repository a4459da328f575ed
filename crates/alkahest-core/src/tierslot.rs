//! `TierSlot`: the code a function runs, replaceable while calls are running (tier-up).
//!
//! Reading is one acquire load, so the scalar call path pays nothing for tier-up. The
//! price: a slot keeps every value ever installed until it is dropped. A function is
//! installed at most once per tier, so that is at most a few kernels per function.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

pub struct TierSlot<T> {
    current: AtomicPtr<T>,
    /// Owns every installed value; never shrinks while the slot lives.
    installed: Mutex<Vec<Arc<T>>>,
}

// SAFETY: the slot hands out `&T` and `Arc<T>` across threads, which needs T: Send + Sync.
unsafe impl<T: Send + Sync> Send for TierSlot<T> {}
unsafe impl<T: Send + Sync> Sync for TierSlot<T> {}

impl<T> TierSlot<T> {
    pub fn new(first: T) -> Self {
        Self::from_arc(Arc::new(first))
    }

    /// A slot holding `first`, shared with whoever else holds it.
    pub fn from_arc(first: Arc<T>) -> Self {
        TierSlot {
            current: AtomicPtr::new(Arc::as_ptr(&first) as *mut T),
            installed: Mutex::new(vec![first]),
        }
    }

    /// The value installed last.
    #[inline]
    pub fn get(&self) -> &T {
        // SAFETY: `current` always points into an Arc held by `installed`, which keeps
        // it alive (and unmoved) for as long as `self`.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// The value installed last, as a shared handle.
    pub fn get_arc(&self) -> Arc<T> {
        let installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load(Ordering::Acquire);
        installed
            .iter()
            .rev()
            .find(|a| std::ptr::eq(Arc::as_ptr(a), current))
            .cloned()
            .expect("current is installed")
    }

    /// Every value installed so far, oldest first.
    pub fn installed(&self) -> Vec<Arc<T>> {
        self.installed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes the most recently installed value for which `pick` holds current again (a
    /// tier-up measured slower than what it replaced is undone); returns whether one did.
    pub fn restore(&self, pick: impl Fn(&T) -> bool) -> bool {
        let installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        match installed.iter().rev().find(|v| pick(v)) {
            Some(v) => {
                self.current.store(Arc::as_ptr(v) as *mut T, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// Installs `value` if `replace(current)` says so; returns whether it did.
    pub fn install_if(&self, value: Arc<T>, replace: impl FnOnce(&T) -> bool) -> bool {
        let mut installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        if !replace(self.get()) {
            return false;
        }
        self.current.store(Arc::as_ptr(&value) as *mut T, Ordering::Release);
        installed.push(value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_replace_and_earlier_values_stay_valid() {
        let slot = TierSlot::new(String::from("interpreter"));
        let before: &String = slot.get();
        assert!(slot.install_if(Arc::new("cranelift".into()), |cur| cur == "interpreter"));
        assert!(!slot.install_if(Arc::new("interpreter".into()), |cur| cur == "llvm"));
        assert_eq!(slot.get(), "cranelift");
        assert_eq!(before, "interpreter"); // still alive
        assert_eq!(*slot.get_arc(), "cranelift");
    }

    #[test]
    fn readers_see_whole_values_while_another_thread_installs() {
        let slot = Arc::new(TierSlot::new(vec![0u64; 64]));
        let writer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                for k in 1..200u64 {
                    slot.install_if(Arc::new(vec![k; 64]), |_| true);
                }
            })
        };
        for _ in 0..20_000 {
            let v = slot.get();
            assert!(v.iter().all(|&x| x == v[0]));
        }
        writer.join().unwrap();
        assert_eq!(slot.get()[0], 199);
    }
}
