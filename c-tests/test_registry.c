/*
 * The application registry through the C API (docs/CONTRACT.md, "The session manager" and
 * "Limits"): register, unregister and the listing with its caller-buffer protocol; every limit
 * and code of RegisterApplication and UnRegisterApplication (refusals change nothing and raise
 * no event); a registry file (msgr_service_options.registry_path) that persists across
 * services and is shared by two services open at once; REGDB_E_WRITEREGDB when the file cannot
 * be written; E_FAIL for unusable registry paths.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The listing as a malloc'd string (checks the buffer protocol on the way). */
static char *listing(msgr_session_manager *m) {
    size_t needed = 0, again = 0;
    char *buf;
    MSGR_HRESULT hr = msgr_session_manager_get_applications(m, NULL, 0, &needed);
    CHECK_HR(E_INSUFFICIENT_BUFFER, hr);
    CHECK(needed >= 1);
    buf = (char *)malloc(needed + 1);
    REQUIRE(buf != NULL);
    memset(buf, 'Z', needed + 1);
    if (needed > 1) {
        CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_manager_get_applications(m, buf, needed - 1, &again));
        CHECK_INT(again, needed);
        CHECK(buf[0] == 'Z');
    }
    CHECK_OK(msgr_session_manager_get_applications(m, buf, needed, &again));
    CHECK_INT(again, needed);
    CHECK_INT(strlen(buf) + 1, needed);
    CHECK(buf[needed] == 'Z');
    return buf;
}

#define CHECK_LISTING(m, want)                                                    \
    do {                                                                          \
        char *l_ = listing(m);                                                    \
        CHECK_STR(l_, (want));                                                    \
        free(l_);                                                                 \
    } while (0)

static void test_register_list_unregister(void) {
    tu_world w;
    char buf[8];
    size_t needed = 0;
    tu_world_init(&w, TU_NO_APP);
    /* Empty: "" (one byte). */
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_manager_get_applications(w.ma, NULL, 0, &needed));
    CHECK_INT(needed, 1);
    memset(buf, 'x', sizeof buf);
    CHECK_OK(msgr_session_manager_get_applications(w.ma, buf, 1, &needed));
    CHECK(buf[0] == '\0' && buf[1] == 'x');
    CHECK_HR(E_POINTER, msgr_session_manager_get_applications(w.ma, buf, sizeof buf, NULL));

    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP2_LOWER, "Two", "http://two/", NULL, 0));
    CHECK_OK(msgr_session_manager_register_application(w.mb, TU_APP, TU_APP_NAME, TU_APP_URL, "/bin/sh", 0));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "MA", "MA:AppRegistered(" TU_APP2 ")", "MA:AppRegistered(" TU_APP ")");
    tu_log_clear(&w.log);
    /* Sorted by GUID, uppercase, path "" when none; both managers see the same. */
    CHECK_LISTING(w.ma, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t/bin/sh\n"
                        TU_APP2 "\tTwo\thttp://two/\t\n");
    CHECK_LISTING(w.mb, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t/bin/sh\n"
                        TU_APP2 "\tTwo\thttp://two/\t\n");
    /* Already registered (either case): refused, the first registration stays. */
    CHECK_HR(SR_APP_ALREADY_REGISTERED, msgr_session_manager_register_application(w.mb, TU_APP2, "Other", "u", "", 0));
    CHECK_HR(SR_APP_ALREADY_REGISTERED, msgr_session_manager_register_application(w.ma, TU_APP2_LOWER, "Two", "http://two/", "", 0));
    /* Unregister, either case. */
    CHECK_OK(msgr_session_manager_unregister_application(w.mb, TU_APP2_LOWER));
    CHECK_HR(SR_APP_NOT_REGISTERED, msgr_session_manager_unregister_application(w.ma, TU_APP2));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unregister_application(w.ma, "{nope}"));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unregister_application(w.ma, ""));
    CHECK_LISTING(w.ma, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t/bin/sh\n");
    tu_pump(&w);
    EXPECT_LOG(&w.log, "MA:AppUnregistered(" TU_APP2 ")", "MB:AppUnregistered(" TU_APP2 ")");
    /* To change it: unregister first. */
    CHECK_OK(msgr_session_manager_unregister_application(w.ma, TU_APP));
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, "Renamed", "", "", 0));
    CHECK_LISTING(w.mb, TU_APP "\tRenamed\t\t\n");
    tu_world_cleanup(&w);
}

/* Creates `dir`/<name of n characters> and returns its path (malloc'd). */
static char *make_file(const char *dir, size_t n) {
    char *name = tu_repeat("f", n);
    char *path = tu_strf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fclose(f);
    }
    free(name);
    return path;
}

static void test_limits_and_codes(void) {
    tu_world w;
    char dir[] = "/tmp/msgrpriv-reg-XXXXXX"; /* 24 characters */
    char *n256, *n257, *e256, *e257, *p260, *p261, *missing260, *name;
    static const char *const bad_guids[] = {
        "",
        "{bad}",
        "11111111-2222-3333-4444-555555555555",
        "{11111111-2222-3333-4444-555555555555",
        "11111111-2222-3333-4444-555555555555}",
        "{11111111-2222-3333-4444-55555555555G}",
        "{11111111+2222-3333-4444-555555555555}",
        "{111111112-222-3333-4444-555555555555}",
        "{11111111-2222-3333-4444-555555555555}x",
        "{11111111-2222-3333-4444-5555555555555}",
        " {11111111-2222-3333-4444-555555555555}",
        "(11111111-2222-3333-4444-555555555555)",
    };
    size_t i;
    REQUIRE(mkdtemp(dir) != NULL);
    tu_world_init(&w, TU_NO_APP);
    n256 = tu_repeat("n", 256);
    n257 = tu_repeat("n", 257);
    e256 = tu_repeat("\xc3\xa9", 256);
    e257 = tu_repeat("\xc3\xa9", 257);
    /* "/tmp/msgrpriv-reg-XXXXXX/" is 25 characters. */
    p260 = make_file(dir, 235);
    p261 = make_file(dir, 236);
    name = tu_repeat("m", 235);
    missing260 = tu_strf("%s/%s", dir, name);
    free(name);
    CHECK_INT(strlen(p260), 260);
    CHECK_INT(strlen(p261), 261);

    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 1));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0x80000000u));
    for (i = 0; i < sizeof bad_guids / sizeof bad_guids[0]; i++) {
        if (!CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, bad_guids[i], "n", "u", "", 0))) {
            fprintf(stderr, "      guid: \"%s\"\n", bad_guids[i]);
        }
    }
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, n257, "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, e257, "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", n257, "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", e257, "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", p261, 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "bin/sh", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "./sh", 0));
    CHECK_HR(E_FILE_NOT_FOUND, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "/no/such/dir/app", 0));
    CHECK_HR(E_FILE_NOT_FOUND, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", missing260, 0));
    /* Control characters would break the listing's lines. */
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "a\tb", "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "a\nb", "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u\r", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "\xff\xfe", "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "\xc3", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "/tmp/\xff", 0));
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(w.ma, NULL, "n", "u", "", 0));
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(w.ma, TU_APP, NULL, "u", "", 0));
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(w.ma, TU_APP, "n", NULL, "", 0));
    /* Nothing changed, nothing was announced. */
    CHECK_LISTING(w.ma, "");
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);

    /* At the limits. */
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, n256, n256, p260, 0));
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP2, e256, e256, NULL, 0));
    {
        char *want = tu_strf(TU_APP "\t%s\t%s\t%s\n" TU_APP2 "\t%s\t%s\t\n", n256, n256, p260, e256, e256);
        CHECK_LISTING(w.mb, want);
        free(want);
    }
    tu_world_cleanup(&w);
    unlink(p260);
    unlink(p261);
    rmdir(dir);
    free(n256);
    free(n257);
    free(e256);
    free(e257);
    free(p260);
    free(p261);
    free(missing260);
}

/* ------------------------------------------------------------------------------------------ */
/* The registry file                                                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    msgr_service *svc;
    msgr_client *c;
    msgr_session_manager *m;
} one_user;

static MSGR_HRESULT open_user(one_user *u, const char *registry, const char *name) {
    msgr_service_options o;
    MSGR_HRESULT hr;
    memset(u, 0, sizeof *u);
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = true;
    o.registry_path = registry;
    hr = msgr_service_create(&o, &u->svc);
    if (hr != S_OK) {
        CHECK(u->svc == NULL);
        return hr;
    }
    REQUIRE_OK(msgr_client_create(u->svc, name, MSGR_DISPATCH_MANUAL, &u->c));
    REQUIRE_OK(msgr_session_manager_create(u->c, &u->m));
    return S_OK;
}

static void close_user(one_user *u) {
    CHECK_OK(msgr_session_manager_release(u->m));
    CHECK_OK(msgr_client_destroy(u->c));
    CHECK_OK(msgr_service_destroy(u->svc));
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *p;
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        p = tu_strf("%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            remove_tree(p);
        } else {
            unlink(p);
        }
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static void test_registry_file_persists(void) {
    char dir[] = "/tmp/msgrpriv-regfile-XXXXXX";
    char *path;
    one_user u, v;
    REQUIRE(mkdtemp(dir) != NULL);
    path = tu_strf("%s/apps.json", dir);

    /* First service: creates the file. */
    REQUIRE_OK(open_user(&u, path, TU_ALICE));
    CHECK(access(path, F_OK) == 0);
    CHECK_LISTING(u.m, "");
    CHECK_OK(msgr_session_manager_register_application(u.m, TU_APP2_LOWER, "Two", "http://two/", "", 0));
    CHECK_OK(msgr_session_manager_register_application(u.m, TU_APP, TU_APP_NAME, TU_APP_URL, "/bin/sh", 0));
    close_user(&u);

    /* Second service, later: the same content. */
    REQUIRE_OK(open_user(&u, path, TU_ALICE));
    CHECK_LISTING(u.m, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t/bin/sh\n"
                       TU_APP2 "\tTwo\thttp://two/\t\n");
    /* Two services open at once on one file see each other's changes. */
    REQUIRE_OK(open_user(&v, path, TU_BOB));
    CHECK_OK(msgr_session_manager_unregister_application(v.m, TU_APP2));
    CHECK_LISTING(u.m, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t/bin/sh\n");
    CHECK_HR(SR_APP_NOT_REGISTERED, msgr_session_manager_unregister_application(u.m, TU_APP2));
    CHECK_HR(SR_APP_ALREADY_REGISTERED, msgr_session_manager_register_application(u.m, TU_APP, "n", "u", "", 0));
    close_user(&v);
    close_user(&u);

    REQUIRE_OK(open_user(&u, path, TU_ALICE));
    CHECK_LISTING(u.m, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t/bin/sh\n");
    close_user(&u);

    /* An in-memory service does not see the file. */
    REQUIRE_OK(open_user(&u, NULL, TU_ALICE));
    CHECK_LISTING(u.m, "");
    close_user(&u);

    remove_tree(dir);
    free(path);
}

/* This program's path, for the process that changes the registry file. */
static const char *self_path;

/* The other process: a service of its own on the registry file `path`; registers one
 * application and unregisters another. */
static int child_changes_registry(const char *path) {
    one_user w;
    MSGR_HRESULT hr = open_user(&w, path, TU_BOB);
    if (hr == S_OK) {
        hr = msgr_session_manager_register_application(w.m, TU_APP, TU_APP_NAME, TU_APP_URL, "", 0);
    }
    if (hr == S_OK) {
        hr = msgr_session_manager_unregister_application(w.m, TU_APP2);
    }
    if (w.svc != NULL) {
        close_user(&w);
    }
    return hr == S_OK && tu_g()->failures == 0 ? 0 : 1;
}

/* Dispatches `c` until `log` has `count` lines containing `needle` (at most TU_PATIENCE_MS). */
static bool pump_until(msgr_client *c, tu_log *log, const char *needle, size_t count) {
    uint64_t deadline = tu_now_ms() + TU_PATIENCE_MS;
    while (tu_log_count(log, NULL, needle) < count) {
        uint32_t n = 0;
        if (tu_now_ms() >= deadline) {
            return false;
        }
        CHECK_OK(msgr_client_dispatch(c, 10, &n));
    }
    return true;
}

/* Changes made by another process to a shared registry file reach every manager here,
 * each once, within the documented delay (a tenth of a second plus the read). */
static void test_registry_changes_of_another_process_are_announced(void) {
    char dir[] = "/tmp/msgrpriv-regfile-XXXXXX";
    char *path;
    one_user u, v;
    tu_log log;
    pid_t pid;
    int status = 0;
    uint64_t t0;
    REQUIRE(mkdtemp(dir) != NULL);
    path = tu_strf("%s/apps.json", dir);
    tu_log_init(&log);
    REQUIRE_OK(open_user(&u, path, TU_ALICE));
    REQUIRE_OK(open_user(&v, path, TU_BOB));
    (void)tu_watch_manager(&log, u.m, "U");
    (void)tu_watch_manager(&log, v.m, "V");
    CHECK_OK(msgr_session_manager_register_application(u.m, TU_APP2, "Two", "", "", 0));
    /* The other service in this process hears of it through the file. */
    CHECK(pump_until(u.c, &log, "U:AppRegistered(" TU_APP2 ")", 1));
    CHECK(pump_until(v.c, &log, "V:AppRegistered(" TU_APP2 ")", 1));
    tu_log_clear(&log);

    fflush(NULL);
    t0 = tu_now_ms();
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* Another program: this one again, as the child (see main). */
        execl(self_path, self_path, "--child", path, (char *)NULL);
        _exit(127);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(pump_until(u.c, &log, "U:AppRegistered(" TU_APP ")", 1));
    CHECK(pump_until(u.c, &log, "U:AppUnregistered(" TU_APP2 ")", 1));
    CHECK(pump_until(v.c, &log, "V:AppRegistered(" TU_APP ")", 1));
    CHECK(pump_until(v.c, &log, "V:AppUnregistered(" TU_APP2 ")", 1));
    printf("  announced %llu ms after the fork\n", (unsigned long long)(tu_now_ms() - t0));
    /* Exactly once each, nothing else. */
    tu_sleep_ms(300);
    tu_pump1(u.c);
    tu_pump1(v.c);
    CHECK_INT(tu_log_count(&log, NULL, NULL), 4);
    CHECK_LISTING(u.m, TU_APP "\t" TU_APP_NAME "\t" TU_APP_URL "\t\n");
    close_user(&v);
    close_user(&u);
    tu_log_free(&log);
    remove_tree(dir);
    free(path);
}

static void test_registry_file_cannot_be_written(void) {
    char dir[] = "/tmp/msgrpriv-regfile-XXXXXX";
    char *path;
    one_user u;
    REQUIRE(mkdtemp(dir) != NULL);
    path = tu_strf("%s/apps.json", dir);
    REQUIRE_OK(open_user(&u, path, TU_ALICE));
    CHECK_OK(msgr_session_manager_register_application(u.m, TU_APP, "One", "", "", 0));
    /* Replace the file by a directory: every write fails, nothing changes. */
    CHECK(unlink(path) == 0);
    CHECK(mkdir(path, 0700) == 0);
    CHECK_HR(REGDB_E_WRITEREGDB, msgr_session_manager_register_application(u.m, TU_APP2, "Two", "", "", 0));
    CHECK_HR(REGDB_E_WRITEREGDB, msgr_session_manager_unregister_application(u.m, TU_APP));
    CHECK_LISTING(u.m, TU_APP "\tOne\t\t\n");
    tu_pump1(u.c);
    close_user(&u);
    remove_tree(dir);
    free(path);
}

static void test_unusable_registry_paths(void) {
    char dir[] = "/tmp/msgrpriv-regfile-XXXXXX";
    char *p;
    one_user u;
    FILE *f;
    REQUIRE(mkdtemp(dir) != NULL);
    /* A directory. */
    CHECK_HR(E_FAIL, open_user(&u, dir, TU_ALICE));
    /* A directory that does not exist. */
    p = tu_strf("%s/missing/apps.json", dir);
    CHECK_HR(E_FAIL, open_user(&u, p, TU_ALICE));
    free(p);
    /* Not a registry document. */
    p = tu_strf("%s/garbage.json", dir);
    f = fopen(p, "w");
    REQUIRE(f != NULL);
    fputs("this is not a registry\n", f);
    fclose(f);
    CHECK_HR(E_FAIL, open_user(&u, p, TU_ALICE));
    free(p);
    /* A symbolic link, even to a good file. */
    p = tu_strf("%s/good.json", dir);
    REQUIRE_OK(open_user(&u, p, TU_ALICE));
    close_user(&u);
    {
        char *link = tu_strf("%s/link.json", dir);
        CHECK(symlink(p, link) == 0);
        CHECK_HR(E_FAIL, open_user(&u, link, TU_ALICE));
        free(link);
    }
    free(p);
    /* Not UTF-8. */
    CHECK_HR(E_INVALIDARG, open_user(&u, "/tmp/\xff\xfe.json", TU_ALICE));
    remove_tree(dir);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        return child_changes_registry(argv[2]);
    }
    self_path = argv[0];
    RUN(test_register_list_unregister);
    RUN(test_limits_and_codes);
    RUN(test_registry_file_persists);
    RUN(test_registry_changes_of_another_process_are_announced);
    RUN(test_registry_file_cannot_be_written);
    RUN(test_unusable_registry_paths);
    return tu_finish();
}
