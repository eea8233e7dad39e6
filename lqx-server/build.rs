//! Records the commit the server is built from, for `AuthService/GetServerInfo` (shown by
//! `lqx --version`): `LQX_GIT_COMMIT` when a packaging build sets it, else the checkout's
//! `git rev-parse --short=12 HEAD`, else nothing (a source tarball without git).

use std::{env, path::PathBuf, process::Command};

fn git(dir: &PathBuf, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=LQX_GIT_COMMIT");
    if env::var("LQX_GIT_COMMIT").is_ok_and(|c| !c.is_empty()) {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let Some(commit) = git(&dir, &["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    // Rebuilt when HEAD moves: a checkout (HEAD) or a commit on the branch (its ref, or
    // packed-refs once git has packed it).
    if let Some(git_dir) = git(&dir, &["rev-parse", "--absolute-git-dir"]) {
        let git_dir = PathBuf::from(git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", git_dir.join("packed-refs").display());
        if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", git_dir.join(r).display());
        }
    }
    println!("cargo:rustc-env=LQX_GIT_COMMIT={commit}");
}
