//! Seats: accepting an invitation takes one atomically, in the
//! transaction that adds the member; when they are all taken the answer
//! is a `402 seat_limit_reached` and the invitation stays open.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect, mailed_token, post, problem};
use serde_json::json;

use crate::support::start;

#[test]
fn twenty_concurrent_acceptances_against_five_free_seats_admit_exactly_five() -> Result<()> {
    let b = start()?;
    // The free plan has 6 seats; the admin holds one.
    let acme = b.org("acme")?;
    let mut tokens = Vec::new();
    for i in 0..20 {
        let email = format!("person{i}@acme.test");
        expect(
            post(
                &b.host,
                &format!("/v1/orgs/{}/invitations", acme.id),
                &json!({"email": email, "role": "member"}),
                Some(&acme.admin),
            )?,
            201,
        )?;
        tokens.push(mailed_token(&b.host, &email, "invitation", "ginv_")?);
    }
    let host = &b.host;
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let accepting: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| {
                scope.spawn(move || -> Result<(u16, String)> {
                    let reply = post(
                        host,
                        "/v1/invitations/accept",
                        &json!({"token": token, "password": "correct horse battery staple 42", "display_name": format!("Person {i}")}),
                        None,
                    )?;
                    let code = reply.json()?["code"].as_str().unwrap_or_default().to_string();
                    Ok((reply.status, code))
                })
            })
            .collect();
        accepting
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect::<Result<Vec<_>>>()
    })?;
    let admitted = answers.iter().filter(|(status, _)| *status == 201).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 201)
        .collect();
    assert_eq!(admitted, 5, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|(status, code)| *status == 402 && code == "seat_limit_reached"),
        "{refused:?}"
    );
    let members = expect(
        call(
            &b.host,
            "GET",
            &format!("/v1/orgs/{}/members", acme.id),
            None,
            Some(&acme.admin),
            &[],
        )?,
        200,
    )?;
    assert_eq!(members["items"].as_array().context("items")?.len(), 6);
    let seats = b.check(&acme.admin, "seats", None)?;
    assert_eq!(
        (
            seats["allowed"].as_bool(),
            seats["used"].as_i64(),
            seats["limit"].as_i64()
        ),
        (Some(false), Some(6), Some(6))
    );

    // A refused invitation stays open: once a seat is free it admits.
    let (i, _) = answers
        .iter()
        .enumerate()
        .find(|(_, (status, _))| *status == 402)
        .context("a refused acceptance")?;
    let gone = members["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|m| m["role"] == "member")
        .and_then(|m| m["user_id"].as_str().or(m["id"].as_str()))
        .context("a member")?
        .to_string();
    let removed = call(
        &b.host,
        "DELETE",
        &format!("/v1/orgs/{}/members/{gone}", acme.id),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(removed.status, 204, "{}", removed.text());
    let late = post(
        &b.host,
        "/v1/invitations/accept",
        &json!({"token": tokens[i], "password": "correct horse battery staple 42", "display_name": "Late"}),
        None,
    )?;
    assert_eq!(late.status, 201, "{}", late.text());
    let next = answers
        .iter()
        .enumerate()
        .filter(|(_, (status, _))| *status == 402)
        .nth(1)
        .context("another refused acceptance")?
        .0;
    let full = post(
        &b.host,
        "/v1/invitations/accept",
        &json!({"token": tokens[next], "password": "correct horse battery staple 42", "display_name": "Later"}),
        None,
    )?;
    let (code, _, _) = problem(full, 402)?;
    assert_eq!(code, "seat_limit_reached");
    Ok(())
}

#[test]
fn seats_bought_on_stripe_admit_more_members() -> Result<()> {
    let mut b = start()?;
    let acme = b.org("acme")?;
    // Pro with 5 included and 3 bought.
    b.subscribe(&acme, "pro", 8)?;
    b.sync()?;
    for i in 0..7 {
        let email = format!("p{i}@acme.test");
        gatehouse_tests::app::join(&b.host, &acme.admin, &acme.id, &email, "member", &[])?;
    }
    assert_eq!(b.billing(&acme)?["seats"]["used"], 8);
    let token = gatehouse_tests::app::signed_in(&b.host, "ninth@acme.test")?;
    expect(
        post(
            &b.host,
            &format!("/v1/orgs/{}/invitations", acme.id),
            &json!({"email": "ninth@acme.test", "role": "member"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let invitation = mailed_token(&b.host, "ninth@acme.test", "invitation", "ginv_")?;
    let refused = post(
        &b.host,
        "/v1/invitations/accept",
        &json!({"token": invitation}),
        Some(&token),
    )?;
    let (code, _, _) = problem(refused, 402)?;
    assert_eq!(code, "seat_limit_reached");
    Ok(())
}
