//! Grader for SQLx CRUD: the repository, used as a library against a real PostgreSQL.
//!
//! Every test gets a database of its own (created, migrated by the lab's `migrate`, dropped at
//! the end), so the tests run in parallel.

use std::collections::HashSet;

use labkit::pg::TestDb;
use labkit::wait::within;
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{Page, RepoError, TaskRepo, TaskUpdate};

/// A fresh database, migrated through the lab's code.
async fn setup(max_connections: u32) -> (TestDb, TaskRepo) {
    let db = TestDb::new(max_connections).await;
    let repo = TaskRepo::new(db.pool.clone());
    repo.migrate().await.expect("migrate");
    (db, repo)
}

fn random_name(what: &str) -> String {
    format!("{what}-{}", rand::rng().random_range(1000..1_000_000))
}

// Requirement 1: migrations create the schema, and running them again is harmless.
#[tokio::test]
async fn migrate_creates_the_schema_and_is_idempotent() {
    within(async {
        let (db, repo) = setup(2).await;
        repo.migrate()
            .await
            .expect("a second migrate must be a no-op");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        for table in ["_sqlx_migrations", "lists", "tasks"] {
            assert!(
                tables.iter().any(|t| t == table),
                "missing table {table}: {tables:?}"
            );
        }
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(applied, 1, "the migration must be recorded once");
    })
    .await
}

// Requirement 2: create and get return the stored rows.
#[tokio::test]
async fn creates_and_gets_a_task() {
    within(async {
        let (_db, repo) = setup(2).await;
        let name = random_name("list");
        let capacity = rand::rng().random_range(5..50);
        let list = repo
            .create_list(&name, capacity)
            .await
            .expect("create_list");
        assert_eq!(
            (list.name.as_str(), list.capacity),
            (name.as_str(), capacity)
        );

        let title = random_name("task");
        let task = repo
            .create_task(list.id, &title)
            .await
            .expect("create_task");
        assert_eq!(task.list_id, list.id);
        assert_eq!(task.title, title);
        assert!(!task.done, "a new task is not done");
        let age = chrono::Utc::now() - task.created_at;
        assert!(
            age.num_minutes().abs() < 5,
            "created_at is the database's now(): {age}"
        );

        let fetched = repo.get_task(task.id).await.expect("get_task");
        assert_eq!(fetched, task);
    })
    .await
}

#[tokio::test]
async fn get_of_a_missing_task_is_not_found() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let task = repo
            .create_task(list.id, "exists")
            .await
            .expect("create_task");
        let missing = task.id + rand::rng().random_range(1..1000);
        match repo.get_task(missing).await {
            Err(RepoError::NotFound { id, .. }) => assert_eq!(id, missing),
            other => panic!("get_task({missing}) must be NotFound, got {other:?}"),
        }
    })
    .await
}

// Requirement 3: constraint violations become domain errors.
#[tokio::test]
async fn duplicate_title_in_a_list_is_a_duplicate_error() {
    within(async {
        let (_db, repo) = setup(2).await;
        let a = repo.create_list("a", 10).await.expect("create_list a");
        let b = repo.create_list("b", 10).await.expect("create_list b");
        let title = random_name("task");
        repo.create_task(a.id, &title).await.expect("first task");
        assert!(
            matches!(
                repo.create_task(a.id, &title).await,
                Err(RepoError::Duplicate(_))
            ),
            "the same title twice in one list must be RepoError::Duplicate"
        );
        repo.create_task(b.id, &title)
            .await
            .expect("the same title in another list is fine");
    })
    .await
}

#[tokio::test]
async fn duplicate_list_name_is_a_duplicate_error() {
    within(async {
        let (_db, repo) = setup(2).await;
        let name = random_name("list");
        repo.create_list(&name, 3).await.expect("create_list");
        let again = repo.create_list(&name, 3).await;
        assert!(
            matches!(again, Err(RepoError::Duplicate(_))),
            "a second list named {name:?} must be RepoError::Duplicate, got {again:?}"
        );
    })
    .await
}

#[tokio::test]
async fn task_in_a_missing_list_is_not_found() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let missing = list.id + rand::rng().random_range(1..1000);
        match repo.create_task(missing, "orphan").await {
            Err(RepoError::NotFound { id, .. }) => assert_eq!(id, missing),
            other => panic!("a task in missing list {missing} must be NotFound, got {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn invalid_values_are_invalid_errors() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let empty = repo.create_task(list.id, "").await;
        assert!(
            matches!(empty, Err(RepoError::Invalid(_))),
            "empty title: {empty:?}"
        );
        let zero = repo.create_list("zero", 0).await;
        assert!(
            matches!(zero, Err(RepoError::Invalid(_))),
            "capacity 0: {zero:?}"
        );
    })
    .await
}

// Requirement 4: keyset pagination.
async fn all_pages(repo: &TaskRepo, list_id: i64, limit: i64) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = repo
            .list_tasks(list_id, after, limit)
            .await
            .expect("list_tasks");
        assert!(
            page.tasks.len() as i64 <= limit,
            "a page longer than the limit"
        );
        after = page.next;
        pages.push(page);
        if after.is_none() {
            return pages;
        }
        assert!(pages.len() < 1000, "pagination does not end");
    }
}

#[tokio::test]
async fn lists_tasks_with_keyset_pagination() {
    within(async {
        let (_db, repo) = setup(4).await;
        let mut rng = rand::rng();
        let n = rng.random_range(20..60);
        let list = repo.create_list("big", 100).await.expect("create_list");
        let other = repo.create_list("other", 100).await.expect("create_list");
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(
                repo.create_task(list.id, &format!("t{i}"))
                    .await
                    .expect("create")
                    .id,
            );
            if i % 3 == 0 {
                repo.create_task(other.id, &format!("o{i}"))
                    .await
                    .expect("create");
            }
        }
        let limit = rng.random_range(3..8);
        let pages = all_pages(&repo, list.id, limit).await;
        let seen: Vec<i64> = pages
            .iter()
            .flat_map(|p| p.tasks.iter().map(|t| t.id))
            .collect();
        assert_eq!(seen, ids, "every task of the list, once, in id order");
        let expected_pages = (n as usize).div_ceil(limit as usize);
        assert_eq!(
            pages.len(),
            expected_pages,
            "{n} tasks at {limit} a page make {expected_pages} pages (no empty last page)"
        );
        for page in &pages[..pages.len() - 1] {
            assert_eq!(
                page.next,
                page.tasks.last().map(|t| t.id),
                "next = last id of the page"
            );
        }
    })
    .await
}

#[tokio::test]
async fn pagination_does_not_skip_rows_when_earlier_rows_are_deleted() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 100).await.expect("create_list");
        let mut ids = Vec::new();
        for i in 0..12 {
            ids.push(
                repo.create_task(list.id, &format!("t{i}"))
                    .await
                    .expect("create")
                    .id,
            );
        }
        let first = repo.list_tasks(list.id, None, 5).await.expect("page 1");
        assert_eq!(first.tasks.len(), 5);
        // Somebody deletes two rows of the page we already read: with OFFSET 5 the next page
        // would start two rows too late.
        repo.delete_task(ids[0]).await.expect("delete");
        repo.delete_task(ids[3]).await.expect("delete");
        let second = repo
            .list_tasks(list.id, first.next, 5)
            .await
            .expect("page 2");
        let got: Vec<i64> = second.tasks.iter().map(|t| t.id).collect();
        assert_eq!(got, ids[5..10], "page 2 must start right after the cursor");
    })
    .await
}

#[tokio::test]
async fn rejects_a_page_size_out_of_range() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        repo.create_task(list.id, "one").await.expect("create_task");
        let page = repo
            .list_tasks(list.id, None, 1)
            .await
            .expect("limit 1 is fine");
        assert_eq!(page.tasks.len(), 1);
        for limit in [0, -1, lab::MAX_PAGE_SIZE + 1, i64::MAX] {
            let result = repo.list_tasks(list.id, None, limit).await;
            assert!(
                matches!(result, Err(RepoError::Invalid(_))),
                "limit {limit} must be RepoError::Invalid, got {result:?}"
            );
        }
    })
    .await
}

// Requirement 5: update and delete.
#[tokio::test]
async fn updates_title_and_done() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let task = repo
            .create_task(list.id, "draft")
            .await
            .expect("create_task");
        let title = random_name("final");

        let only_done = TaskUpdate {
            title: None,
            done: Some(true),
        };
        let updated = repo
            .update_task(task.id, only_done)
            .await
            .expect("update done");
        assert_eq!((updated.title.as_str(), updated.done), ("draft", true));

        let only_title = TaskUpdate {
            title: Some(title.clone()),
            done: None,
        };
        let updated = repo
            .update_task(task.id, only_title)
            .await
            .expect("update title");
        assert_eq!(
            (updated.title.as_str(), updated.done),
            (title.as_str(), true)
        );
        assert_eq!(repo.get_task(task.id).await.expect("get"), updated);
    })
    .await
}

#[tokio::test]
async fn update_errors_are_domain_errors() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let a = repo.create_task(list.id, "a").await.expect("create a");
        let b = repo.create_task(list.id, "b").await.expect("create b");
        let clash = TaskUpdate {
            title: Some("a".into()),
            done: None,
        };
        let result = repo.update_task(b.id, clash).await;
        assert!(
            matches!(result, Err(RepoError::Duplicate(_))),
            "rename onto a: {result:?}"
        );
        let missing = a.id.max(b.id) + rand::rng().random_range(1..1000);
        let result = repo.update_task(missing, TaskUpdate::default()).await;
        assert!(
            matches!(result, Err(RepoError::NotFound { id, .. }) if id == missing),
            "update of missing task {missing}: {result:?}"
        );
        assert_eq!(
            repo.get_task(b.id).await.expect("get").title,
            "b",
            "b is unchanged"
        );
    })
    .await
}

#[tokio::test]
async fn deletes_a_task_once() {
    within(async {
        let (_db, repo) = setup(2).await;
        let list = repo.create_list("inbox", 10).await.expect("create_list");
        let keep = repo.create_task(list.id, "keep").await.expect("create");
        let gone = repo.create_task(list.id, "gone").await.expect("create");
        repo.delete_task(gone.id).await.expect("delete");
        assert!(matches!(
            repo.get_task(gone.id).await,
            Err(RepoError::NotFound { .. })
        ));
        let again = repo.delete_task(gone.id).await;
        assert!(
            matches!(again, Err(RepoError::NotFound { .. })),
            "deleting twice must be NotFound, got {again:?}"
        );
        assert_eq!(
            repo.get_task(keep.id).await.expect("the other task stays"),
            keep
        );
    })
    .await
}

// Requirement 6: the capacity of a list holds, and a move is all or nothing.
#[tokio::test]
async fn a_full_list_refuses_new_tasks() {
    within(async {
        let (_db, repo) = setup(2).await;
        let capacity = rand::rng().random_range(1..6);
        let list = repo
            .create_list("small", capacity)
            .await
            .expect("create_list");
        for i in 0..capacity {
            repo.create_task(list.id, &format!("t{i}"))
                .await
                .expect("room left");
        }
        match repo.create_task(list.id, "one too many").await {
            Err(RepoError::ListFull {
                list_id,
                capacity: c,
            }) => {
                assert_eq!((list_id, c), (list.id, capacity))
            }
            other => panic!("a full list must answer ListFull, got {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn moves_a_task_between_lists() {
    within(async {
        let (_db, repo) = setup(2).await;
        let from = repo.create_list("from", 10).await.expect("create_list");
        let to = repo.create_list("to", 10).await.expect("create_list");
        let task = repo.create_task(from.id, "travel").await.expect("create");
        let moved = repo.move_task(task.id, to.id).await.expect("move_task");
        assert_eq!(moved.list_id, to.id);
        assert_eq!((moved.id, &moved.title), (task.id, &task.title));
        assert_eq!(repo.get_task(task.id).await.expect("get").list_id, to.id);
        let left = repo.list_tasks(from.id, None, 10).await.expect("list");
        assert!(left.tasks.is_empty(), "the source list is empty now");
    })
    .await
}

#[tokio::test]
async fn a_failed_move_changes_nothing() {
    within(async {
        let (_db, repo) = setup(2).await;
        let from = repo.create_list("from", 10).await.expect("create_list");
        let full = repo.create_list("full", 1).await.expect("create_list");
        let task = repo.create_task(from.id, "stay").await.expect("create");
        repo.create_task(full.id, "occupant").await.expect("create");

        let result = repo.move_task(task.id, full.id).await;
        assert!(
            matches!(result, Err(RepoError::ListFull { .. })),
            "into a full list: {result:?}"
        );
        let missing = task.id + 1000;
        let result = repo.move_task(missing, from.id).await;
        assert!(
            matches!(result, Err(RepoError::NotFound { .. })),
            "missing task: {result:?}"
        );
        let result = repo.move_task(task.id, full.id + 1000).await;
        assert!(
            matches!(result, Err(RepoError::NotFound { .. })),
            "missing list: {result:?}"
        );

        assert_eq!(
            repo.get_task(task.id).await.expect("get"),
            task,
            "the task did not move"
        );
        let in_full = repo.list_tasks(full.id, None, 10).await.expect("list");
        assert_eq!(in_full.tasks.len(), 1);
    })
    .await
}

/// Counts a list's rows directly, not through the lab's code.
async fn count_in(db: &TestDb, list_id: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks WHERE list_id = $1")
        .bind(list_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_moves_never_overfill_a_list() {
    within(async {
        let (db, repo) = setup(16).await;
        let movers = 16;
        let capacity = rand::rng().random_range(2..6);
        let from = repo.create_list("from", 100).await.expect("create_list");
        let to = repo.create_list("to", capacity).await.expect("create_list");
        let mut ids = Vec::new();
        for i in 0..movers {
            ids.push(
                repo.create_task(from.id, &format!("t{i}"))
                    .await
                    .expect("create")
                    .id,
            );
        }
        // All movers start together and race for the last free places of `to`.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(movers));
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let (repo, barrier) = (repo.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    repo.move_task(id, to.id).await
                })
            })
            .collect();
        let (mut moved, mut refused) = (0, 0);
        for handle in handles {
            match handle.await.expect("mover panicked") {
                Ok(_) => moved += 1,
                Err(RepoError::ListFull { .. }) => refused += 1,
                Err(e) => panic!("a move failed with {e:?}; only ListFull is expected"),
            }
        }
        assert_eq!(moved, capacity, "exactly `capacity` moves succeed");
        assert_eq!(refused, movers as i32 - capacity);
        assert_eq!(
            count_in(&db, to.id).await,
            i64::from(capacity),
            "the target holds capacity"
        );
        assert_eq!(
            count_in(&db, from.id).await,
            movers as i64 - i64::from(capacity)
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_overfill_a_list() {
    within(async {
        let (db, repo) = setup(16).await;
        let writers = 16;
        let capacity = rand::rng().random_range(2..6);
        let list = repo
            .create_list("small", capacity)
            .await
            .expect("create_list");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (repo, barrier) = (repo.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    repo.create_task(list.id, &format!("t{i}")).await
                })
            })
            .collect();
        let mut titles = HashSet::new();
        for handle in handles {
            match handle.await.expect("writer panicked") {
                Ok(task) => assert!(titles.insert(task.title)),
                Err(RepoError::ListFull { .. }) => {}
                Err(e) => panic!("a create failed with {e:?}; only ListFull is expected"),
            }
        }
        assert_eq!(
            titles.len(),
            capacity as usize,
            "exactly `capacity` creates succeed"
        );
        assert_eq!(count_in(&db, list.id).await, i64::from(capacity));
    })
    .await
}
